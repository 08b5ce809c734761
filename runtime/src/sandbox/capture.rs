//! Captured guest stdout and stderr: kept for checkers, never shown to the researcher.

use serde::Serialize;

/// What a guest wrote to one of its standard streams, up to a cap; the rest is counted and
/// dropped. The guest always sees its writes succeed, so verbose logging cannot break an
/// analysis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    cap: usize,
    bytes: Vec<u8>,
    written: u64,
}

impl CapturedOutput {
    pub(super) fn new(cap: u64) -> Self {
        CapturedOutput { cap: usize::try_from(cap).unwrap_or(usize::MAX), bytes: Vec::new(), written: 0 }
    }

    pub(super) fn push(&mut self, chunk: &[u8]) {
        self.written = self.written.saturating_add(chunk.len() as u64);
        let room = self.cap.saturating_sub(self.bytes.len());
        self.bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    /// The bytes kept, at most the cap.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many bytes the guest wrote in all, kept or not.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Whether some of what the guest wrote was dropped.
    pub fn truncated(&self) -> bool {
        self.written > self.bytes.len() as u64
    }

    /// A summary for job records: sizes, never content.
    pub fn summary(&self) -> OutputSummary {
        OutputSummary {
            captured_bytes: self.bytes.len() as u64,
            written_bytes: self.written,
            truncated: self.truncated(),
        }
    }
}

/// Sizes of a captured stream, for job records and summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OutputSummary {
    /// Bytes kept in the job record.
    pub captured_bytes: u64,
    /// Bytes the guest wrote.
    pub written_bytes: u64,
    /// Whether bytes past the cap were dropped.
    pub truncated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_cap_and_counts_the_rest() {
        let mut out = CapturedOutput::new(5);
        out.push(b"abc");
        assert!(!out.truncated());
        out.push(b"defg");
        assert_eq!(out.bytes(), b"abcde");
        assert_eq!(out.written(), 7);
        assert!(out.truncated());
    }
}

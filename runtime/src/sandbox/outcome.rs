//! How a job ended, in terms a researcher and an operator can act on.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cache::CacheOutcome;
use super::capture::CapturedOutput;
use super::limits::LimitExceeded;

/// The end state of a job. Written as a short word (`succeeded`, `memory_limit`,
/// `trap: stack_overflow`, ...) in summaries and job records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// `_start` returned, or the guest called `proc_exit(0)`.
    Succeeded,
    /// The guest called `proc_exit` with a non-zero code.
    Exited(i32),
    /// The guest asked for more memory than its policy grants.
    MemoryLimit,
    /// The guest used more CPU time than its policy grants.
    CpuLimit,
    /// The job ran past its wall-clock limit.
    WallClockLimit,
    /// The guest wrote more under `/export/` than its policy grants.
    ExportLimit,
    /// The guest trapped; the kind is wasmtime's trap code in snake case
    /// (`stack_overflow`, `unreachable_code_reached`, ...) or `host_error`.
    Trap(String),
}

impl JobStatus {
    /// Whether the guest finished normally.
    pub fn is_success(&self) -> bool {
        *self == JobStatus::Succeeded
    }

    /// The status for a guest stopped by `err`, returned from instantiation or `_start`.
    pub(super) fn from_error(err: &wasmtime::Error) -> JobStatus {
        if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return if exit.0 == 0 { JobStatus::Succeeded } else { JobStatus::Exited(exit.0) };
        }
        if let Some(limit) = err.downcast_ref::<LimitExceeded>() {
            return match limit {
                LimitExceeded::Memory => JobStatus::MemoryLimit,
                LimitExceeded::Cpu => JobStatus::CpuLimit,
                LimitExceeded::WallClock => JobStatus::WallClockLimit,
                LimitExceeded::Export => JobStatus::ExportLimit,
            };
        }
        match err.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => JobStatus::Trap(snake_case(&format!("{trap:?}"))),
            None => JobStatus::Trap("host_error".to_string()),
        }
    }
}

fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobStatus::Succeeded => f.write_str("succeeded"),
            JobStatus::Exited(code) => write!(f, "exit: {code}"),
            JobStatus::MemoryLimit => f.write_str("memory_limit"),
            JobStatus::CpuLimit => f.write_str("cpu_limit"),
            JobStatus::WallClockLimit => f.write_str("wall_clock_limit"),
            JobStatus::ExportLimit => f.write_str("export_limit"),
            JobStatus::Trap(kind) => write!(f, "trap: {kind}"),
        }
    }
}

/// A status word that is not one [`JobStatus`] writes.
#[derive(Debug, thiserror::Error)]
#[error("unknown job status {0:?}")]
pub struct UnknownStatus(String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "succeeded" => JobStatus::Succeeded,
            "memory_limit" => JobStatus::MemoryLimit,
            "cpu_limit" => JobStatus::CpuLimit,
            "wall_clock_limit" => JobStatus::WallClockLimit,
            "export_limit" => JobStatus::ExportLimit,
            _ => {
                if let Some(code) = s.strip_prefix("exit: ").and_then(|c| c.parse().ok()) {
                    JobStatus::Exited(code)
                } else if let Some(kind) = s.strip_prefix("trap: ") {
                    JobStatus::Trap(kind.to_string())
                } else {
                    return Err(UnknownStatus(s.to_string()));
                }
            }
        })
    }
}

impl Serialize for JobStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Everything the sandbox observed about one run of a guest.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    /// How the guest ended.
    pub status: JobStatus,
    /// wasmtime's description of the error that ended the guest, for checkers and operators;
    /// `None` when the guest succeeded or exited with a code.
    pub detail: Option<String>,
    /// Wall-clock time from instantiation to the end of `_start`.
    pub duration: Duration,
    /// CPU time the guest's thread used.
    pub cpu_time: Duration,
    /// Largest linear memory the guest had, in bytes.
    pub peak_memory_bytes: u64,
    /// What the guest wrote to stdout.
    pub stdout: CapturedOutput,
    /// What the guest wrote to stderr.
    pub stderr: CapturedOutput,
}

/// A module ready to run, compiled or loaded from the cache.
#[derive(Clone)]
pub struct GuestModule {
    /// The module, linked to the WASI imports and ready to instantiate.
    pub(super) pre: wasmtime::InstancePre<super::JobState>,
    /// How it is entered.
    pub(super) kind: super::GuestKind,
    /// SHA-256 (hex) of the module's bytes, as submitted.
    pub sha256: String,
    /// Whether compilation was skipped.
    pub cache: CacheOutcome,
    /// Time spent compiling or loading the module.
    pub load_time: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_its_text() {
        for status in [
            JobStatus::Succeeded,
            JobStatus::Exited(3),
            JobStatus::MemoryLimit,
            JobStatus::CpuLimit,
            JobStatus::WallClockLimit,
            JobStatus::ExportLimit,
            JobStatus::Trap("stack_overflow".into()),
        ] {
            assert_eq!(status.to_string().parse::<JobStatus>().expect("parses"), status);
        }
        assert!("exploded".parse::<JobStatus>().is_err());
    }

    #[test]
    fn trap_names_are_snake_case() {
        assert_eq!(snake_case("StackOverflow"), "stack_overflow");
        assert_eq!(snake_case("UnreachableCodeReached"), "unreachable_code_reached");
    }
}

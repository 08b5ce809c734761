//! Text that a guest chose (file names, descriptions, cell labels, table contents, stdout),
//! made safe to print on a terminal or show on a page: every control character, terminal escape
//! sequence and invisible or direction-changing formatting character is written out as a visible
//! `\u{…}` escape, never passed through to be interpreted. A backslash is doubled, so an escape
//! the guest typed cannot pass for one this module wrote.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must be shown as an escape: C0 and C1 controls (ESC among them) and DEL, and the
/// formatting characters that reorder or hide text (bidirectional overrides and isolates,
/// zero-width characters, line and paragraph separators, the byte-order mark).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// `text` with every character a terminal or a browser could interpret shown as `\u{…}`, and
/// `\` as `\\`. Borrowed when nothing needed escaping.
///
/// ```
/// use ringfence::untrusted::shown;
/// assert_eq!(shown("income.csv"), "income.csv");
/// assert_eq!(shown("red\u{1b}[31m"), "red\\u{1b}[31m");
/// assert_eq!(shown("a\\b"), "a\\\\b");
/// ```
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || needs_escape(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if needs_escape(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` as [`shown`] shows it, but keeping its line breaks: for messages that may span lines
/// (a parser's report with the offending line quoted) and still quote untrusted text.
///
/// ```
/// use ringfence::untrusted::shown_lines;
/// assert_eq!(shown_lines("line 1\nline \u{1b}2"), "line 1\nline \\u{1b}2");
/// ```
pub fn shown_lines(text: &str) -> String {
    text.split('\n').map(shown).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn controls_escapes_and_invisible_formatting_are_shown_not_interpreted() {
        let hostile = "ok\u{1b}]0;pwned\u{7}\r\n\u{9b}2J\u{202e}vsc.exe\u{200b}\u{7f}";
        let safe = shown(hostile);
        assert!(!safe.chars().any(|c| c.is_control() || c == '\u{202e}' || c == '\u{200b}'), "{safe}");
        assert_eq!(safe, "ok\\u{1b}]0;pwned\\u{7}\\u{d}\\u{a}\\u{9b}2J\\u{202e}vsc.exe\\u{200b}\\u{7f}");
    }

    #[test]
    fn plain_text_is_borrowed_and_letters_of_any_script_pass() {
        assert!(matches!(shown("Fryslân — 北京"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(shown(r"\u{1b}"), r"\\u{1b}", "a typed escape cannot pass for a real one");
    }
}

//! Text a peer chose, made safe for a terminal: names, docs, type names, error texts and
//! payloads reach the screen with their control characters escaped, so a hostile peer
//! cannot move the cursor, clear the screen, set the window title or write the
//! clipboard (OSC 52) through our output. JSON (`--json`, pretty results) escapes them
//! itself and stays exact.

use std::{borrow::Cow, fmt::Write};

/// Whether a terminal would act on `c` rather than show it: C0 controls but tab and line
/// feed, DEL, C1 controls (which some terminals take as escape sequences), and the
/// bidirectional overrides and isolates, which reorder what is shown.
fn acts(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character a terminal would act on written as `\u{…}`, as Rust
/// writes it. Text with nothing to escape is returned as it is.
pub fn text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(acts) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if acts(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` on one line: line feeds escaped too (a name or a type has no business with
/// them).
pub fn line(text: &str) -> Cow<'_, str> {
    if !text.contains('\n') {
        return self::text(text);
    }
    Cow::Owned(self::text(text).replace('\n', "\\u{a}"))
}

/// Bytes a peer sent, for a terminal: as text if they are UTF-8, escaped as [`text`]
/// does; other bytes as `\xNN`.
pub fn bytes(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => text(s),
        Err(_) => Cow::Owned(gotalk::wire::Preview::new(bytes, usize::MAX).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_terminal_would_act_on_is_escaped_and_the_rest_is_kept() {
        assert_eq!(
            text("greet(GreetIn) -> Result<GreetOut, Error>"),
            "greet(GreetIn) -> Result<GreetOut, Error>"
        );
        assert!(matches!(
            text("plain ünïcode → ok\tand tabs"),
            Cow::Borrowed(_)
        ));
        // Set the title, clear the screen, write the clipboard.
        let hostile = "op\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZWNobyBoaQ==\x07";
        let shown = text(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert_eq!(
            shown,
            "op\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{1b}]52;c;ZWNobyBoaQ==\\u{7}"
        );
        assert_eq!(
            text("a\\b\u{9b}"),
            "a\\b\\u{9b}",
            "C1 controls; backslashes as they are"
        );
        assert_eq!(text("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(text("two\nlines"), "two\nlines");
        assert_eq!(line("two\nlines"), "two\\u{a}lines");
        assert_eq!(bytes(b"\xff\x1b"), "\\xff\\x1b");
        assert_eq!(bytes("é\x1b".as_bytes()), "é\\u{1b}");
    }
}

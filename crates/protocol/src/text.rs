//! Text from the plugin, made safe to print for people.
//!
//! Everything the plugin produces — its log lines, its stdout/stderr, the message of an
//! ERROR frame (its own `fail()`, or one it forged on the channel) — is hostile data. On a
//! terminal, raw bytes are commands: OSC 0 sets the window title, OSC 52 writes the
//! clipboard, `ESC [ 2 J` clears the screen, a carriage return lets the plugin overwrite a
//! line with a forged `plugjail: ...` summary, bidi overrides reorder what is shown
//! (Trojan Source). So before plugjail prints plugin text for people it goes through
//! [`Escaped`] (or [`escape`]): one line, printable, unambiguous.
//!
//! The escapes, the same everywhere:
//!
//! | input | shown as |
//! |---|---|
//! | `\` | `\\` (so an escape in the output always means an escape) |
//! | newline, carriage return, tab | `\n`, `\r`, `\t` |
//! | other C0 controls, DEL (NUL, ESC, BEL, BS, ...) | `\xNN` (`\x00`, `\x1b`, `\x07`, `\x08`, `\x7f`) |
//! | C1 controls U+0080–U+009F (a lone U+009B is a CSI on some terminals) | `\u{NN}` (`\u{9b}`) |
//! | bidi controls U+202A–U+202E, U+2066–U+2069, marks U+200E, U+200F, U+061C; line and paragraph separators U+2028, U+2029 | `\u{NNNN}` (`\u{202e}`) |
//! | a byte that is not part of valid UTF-8 | `\xNN` (`\xff`) |
//! | `"` inside [`Quoted`] | `\"` |
//!
//! Invalid UTF-8 is shown byte by byte as `\xNN` rather than replaced with U+FFFD, so
//! nothing is lost and the mapping is one-to-one: distinct inputs print differently.
//! Everything else (printable ASCII and Unicode) passes unchanged, and clean text is
//! borrowed, not copied ([`escape`]).
//!
//! Lines printed for people are marked as the plugin's with a `plugin[SOURCE]: ` prefix
//! ([`record`]), so they can never pass for plugjail's own `plugjail: ` lines. JSON
//! (the verdict on `--report` or `--status-fd`) stays lossless: it carries the text as it
//! came, and serde's string escaping makes it safe JSON.

use crate::payload::is_bidi_or_break;
use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Where a line of plugin text came from: the tag in `plugin[TAG]: `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `host->log()` at a level: `debug`, `info`, `warn`, `error`.
    Log(LogLevel),
    /// A line the plugin wrote to its stdout or stderr (the stub merges the two).
    Output,
    /// The message of an ERROR answer to a call: the plugin's `fail()`, or the stub's.
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl Source {
    pub fn tag(self) -> &'static str {
        match self {
            Source::Log(LogLevel::Debug) => "debug",
            Source::Log(LogLevel::Info) => "info",
            Source::Log(LogLevel::Warn) => "warn",
            Source::Log(LogLevel::Error) => "error",
            Source::Output => "output",
            Source::Fail => "fail",
        }
    }
}

/// One record of plugin text as one line for people, newline included:
/// `plugin[TAG]: TEXT\n`. One trailing newline of `text` is the record's end, not part of
/// it; every other newline is shown as `\n`.
pub fn record(source: Source, text: &[u8]) -> String {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let mut line = String::with_capacity(text.len() + 20);
    // Writing into a String cannot fail.
    let _ = writeln!(line, "plugin[{}]: {}", source.tag(), Escaped(text));
    line
}

/// `text` with every control character, bidi control and invalid byte made visible (the
/// table in the module docs); borrowed when there is nothing to escape.
pub fn escape(text: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(text) {
        Ok(s) if !s.chars().any(|c| shown_escaped(c, false)) => Cow::Borrowed(s),
        _ => Cow::Owned(Escaped(text).to_string()),
    }
}

/// Displays bytes escaped (the table in the module docs), on one line.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, false)
    }
}

/// Displays text escaped and in double quotes (`"` inside shown as `\"`), so where the
/// plugin's words end is never in doubt: for plugin text inside plugjail's own sentences.
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        write_escaped(f, self.0.as_bytes(), true)?;
        f.write_char('"')
    }
}

fn write_escaped(out: &mut dyn fmt::Write, text: &[u8], quote: bool) -> fmt::Result {
    for chunk in text.utf8_chunks() {
        let valid = chunk.valid();
        let mut clean = 0;
        for (i, c) in valid.char_indices() {
            if shown_escaped(c, quote) {
                out.write_str(&valid[clean..i])?;
                write_char_escape(out, c)?;
                clean = i + c.len_utf8();
            }
        }
        out.write_str(&valid[clean..])?;
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// Whether `c` is shown as an escape rather than as itself.
fn shown_escaped(c: char, quote: bool) -> bool {
    // is_control: Unicode category Cc, i.e. C0, DEL and C1.
    c.is_control() || c == '\\' || (quote && c == '"') || is_bidi_or_break(c)
}

fn write_char_escape(out: &mut dyn fmt::Write, c: char) -> fmt::Result {
    match c {
        '\\' => out.write_str("\\\\"),
        '"' => out.write_str("\\\""),
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c if c.is_ascii() => write!(out, "\\x{:02x}", u32::from(c)),
        c => write!(out, "\\u{{{:x}}}", u32::from(c)),
    }
}

/// Reassembles the plugin's output, which arrives in chunks cut anywhere (in the middle
/// of a line, or of a UTF-8 sequence), into lines. A line longer than [`Lines::MAX`]
/// bytes is passed on in pieces of at most that size, cut between characters where the
/// text is UTF-8, so memory stays bounded.
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// The longest piece held back waiting for its newline.
    pub const MAX: usize = 4096;

    /// Adds a chunk; calls `line` for every line it completes (without the newline).
    pub fn push(&mut self, mut chunk: &[u8], mut line: impl FnMut(&[u8])) {
        while let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                emit_long(&chunk[..nl], &mut line);
            } else {
                self.partial.extend_from_slice(&chunk[..nl]);
                emit_long(&self.partial, &mut line);
                self.partial.clear();
            }
            chunk = &chunk[nl + 1..];
        }
        self.partial.extend_from_slice(chunk);
        while self.partial.len() > Self::MAX {
            let cut = char_boundary(&self.partial, Self::MAX);
            line(&self.partial[..cut]);
            self.partial.drain(..cut);
        }
    }

    /// Passes on what is left of an unfinished last line, if anything.
    pub fn finish(&mut self, mut line: impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            emit_long(&self.partial, &mut line);
            self.partial.clear();
        }
    }
}

/// Passes on one line, in pieces of at most [`Lines::MAX`] bytes.
fn emit_long(mut text: &[u8], line: &mut impl FnMut(&[u8])) {
    while text.len() > Lines::MAX {
        let cut = char_boundary(text, Lines::MAX);
        line(&text[..cut]);
        text = &text[cut..];
    }
    line(text);
}

/// The largest cut at or below `max` (> 3) that does not split a UTF-8 sequence; `max`
/// itself when the bytes there are no UTF-8 continuation.
fn char_boundary(text: &[u8], max: usize) -> usize {
    let is_continuation = |i: usize| text.get(i).is_some_and(|b| b & 0xc0 == 0x80);
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&i| !is_continuation(i))
        .unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn esc(b: &[u8]) -> String {
        escape(b).into_owned()
    }

    fn lines_of(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut lines = Lines::default();
        for c in chunks {
            lines.push(c, |l| out.push(l.to_vec()));
        }
        lines.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn clean_text_passes_unchanged_and_is_borrowed() {
        for s in ["", "hello, world", "größe 3 € — 日本語 ✓", "a\"quote'"] {
            assert!(
                matches!(escape(s.as_bytes()), Cow::Borrowed(t) if t == s),
                "{s}"
            );
        }
    }

    #[test]
    fn terminal_escape_sequences_are_made_visible() {
        assert_eq!(esc(b"\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
        assert_eq!(
            esc(b"\x1b]52;c;ZWNobyBoaQ==\x07"),
            "\\x1b]52;c;ZWNobyBoaQ==\\x07"
        );
        assert_eq!(esc(b"\x1b[2J\x1b[H"), "\\x1b[2J\\x1b[H");
        assert_eq!(
            esc(b"ok\rplugjail: session ended cleanly"),
            "ok\\rplugjail: session ended cleanly"
        );
        assert_eq!(esc(b"a\x08\x7f\x00b\tc\nd"), "a\\x08\\x7f\\x00b\\tc\\nd");
    }

    #[test]
    fn c1_controls_and_bidi_controls_are_made_visible() {
        assert_eq!(esc("\u{9b}2J".as_bytes()), "\\u{9b}2J");
        assert_eq!(esc("\u{85}".as_bytes()), "\\u{85}");
        assert_eq!(
            esc("user\u{202e}txt.exe".as_bytes()),
            "user\\u{202e}txt.exe"
        );
        for c in ('\u{202a}'..='\u{202e}')
            .chain('\u{2066}'..='\u{2069}')
            .chain(['\u{200e}', '\u{200f}', '\u{061c}', '\u{2028}', '\u{2029}'])
        {
            let shown = esc(c.to_string().as_bytes());
            assert_eq!(shown, format!("\\u{{{:x}}}", u32::from(c)));
        }
    }

    #[test]
    fn invalid_utf8_is_shown_byte_by_byte() {
        assert_eq!(esc(b"a\xffb\xc3"), "a\\xffb\\xc3");
        // An overlong encoding of '/' and a lone continuation byte.
        assert_eq!(esc(b"\xc0\xaf\x80"), "\\xc0\\xaf\\x80");
        // A C1 control as a raw byte is invalid UTF-8, told apart from U+009B.
        assert_eq!(esc(b"\x9b"), "\\x9b");
    }

    #[test]
    fn a_backslash_is_escaped_so_the_output_is_unambiguous() {
        assert_eq!(esc(b"C:\\x1b"), "C:\\\\x1b");
        assert_ne!(esc(b"\\x1b"), esc(b"\x1b"));
    }

    #[test]
    fn quoted_text_escapes_its_quotes() {
        assert_eq!(
            Quoted("say \"hi\"\x1b[2J").to_string(),
            "\"say \\\"hi\\\"\\x1b[2J\""
        );
    }

    #[test]
    fn records_are_one_marked_line() {
        assert_eq!(record(Source::Output, b"hi\n"), "plugin[output]: hi\n");
        assert_eq!(
            record(Source::Log(LogLevel::Warn), b"two\nlines\n\n"),
            "plugin[warn]: two\\nlines\\n\n"
        );
        assert_eq!(
            record(Source::Fail, b"\rplugjail: session ended cleanly"),
            "plugin[fail]: \\rplugjail: session ended cleanly\n"
        );
        assert_eq!(
            record(Source::Log(LogLevel::Debug), b""),
            "plugin[debug]: \n"
        );
    }

    #[test]
    fn output_chunks_become_whole_lines() {
        assert_eq!(
            lines_of(&[b"one\ntw", b"o\n", b"", b"thr", b"ee"]),
            [&b"one"[..], b"two", b"three"]
        );
        assert_eq!(lines_of(&[b"\n\n"]), [&b""[..], b""]);
        assert!(lines_of(&[b""]).is_empty());
        // A UTF-8 sequence cut between chunks is put back together.
        assert_eq!(lines_of(&[b"\xe2\x82", b"\xac\n"]), ["€".as_bytes()]);
    }

    #[test]
    fn long_lines_come_in_bounded_pieces_cut_between_characters() {
        let mut text = vec![b'x'; Lines::MAX - 1];
        text.extend_from_slice("€".as_bytes()); // straddles MAX
        text.extend_from_slice(b"tail");
        for split in [1, 100, Lines::MAX, text.len()] {
            let (a, b) = text.split_at(split);
            let got = lines_of(&[a, b]);
            assert_eq!(got.len(), 2, "split {split}");
            assert_eq!(got[0], vec![b'x'; Lines::MAX - 1]);
            assert_eq!(got[1], "€tail".as_bytes());
            assert!(got.iter().all(|l| l.len() <= Lines::MAX));
        }
    }

    proptest! {
        #[test]
        fn escaped_text_is_one_printable_line(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let shown = esc(&bytes);
            prop_assert!(!shown.chars().any(|c| c.is_control() || is_bidi_or_break(c)), "{shown:?}");
            let rec = record(Source::Output, &bytes);
            prop_assert!(rec.starts_with("plugin[output]: "));
            prop_assert_eq!(rec.matches('\n').count(), 1);
        }

        #[test]
        fn escaping_is_one_to_one(a in proptest::collection::vec(any::<u8>(), 0..12),
                                  b in proptest::collection::vec(any::<u8>(), 0..12)) {
            prop_assert_eq!(a == b, esc(&a) == esc(&b));
        }

        #[test]
        fn lines_lose_no_bytes(mut bytes in proptest::collection::vec(any::<u8>(), 0..9000),
                               line_len in 1usize..6000, cut in 0usize..9000) {
            // Lines of about `line_len` bytes, some longer than Lines::MAX.
            for (i, b) in bytes.iter_mut().enumerate() {
                if i % line_len == line_len - 1 {
                    *b = b'\n';
                }
            }
            let cut = cut.min(bytes.len());
            let got = lines_of(&[&bytes[..cut], &bytes[cut..]]);
            prop_assert!(got.iter().all(|l| l.len() <= Lines::MAX && !l.contains(&b'\n')));
            let total: usize = got.iter().map(Vec::len).sum();
            prop_assert_eq!(total, bytes.iter().filter(|&&b| b != b'\n').count());
        }
    }
}

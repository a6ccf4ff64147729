//! Profile diagnostics: every problem found in a profile, with the file, line and column
//! it points at, the offending line, and a hint where one helps.

use std::fmt;
use std::path::{Path, PathBuf};

use super::yaml::Pos;

/// One problem in a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub pos: Pos,
    pub message: String,
    pub hint: Option<String>,
}

/// The files a profile was read from (the profile and its `extends:` bases), so that a
/// [`Pos`] can be shown as `FILE:LINE:COL` with the line's text.
#[derive(Debug, Default)]
pub struct Sources {
    files: Vec<(PathBuf, String)>,
}

impl Sources {
    pub fn add(&mut self, path: &Path, text: String) -> usize {
        self.files.push((path.to_path_buf(), text));
        self.files.len() - 1
    }

    /// Adds every file of `other` after these; returns the index its first file now has.
    pub fn append(&mut self, other: Sources) -> usize {
        let offset = self.files.len();
        self.files.extend(other.files);
        offset
    }

    pub fn path(&self, file: usize) -> &Path {
        &self.files[file].0
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn line_text(&self, pos: Pos) -> Option<&str> {
        let (_, text) = self.files.get(pos.file)?;
        text.lines().nth((pos.line as usize).checked_sub(1)?)
    }
}

/// All the problems found while loading one profile, ready to print.
#[derive(Debug)]
pub struct ProfileErrors {
    pub sources: Sources,
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ProfileErrors {
    /// `FILE:LINE:COL: error: MESSAGE`, then the line with a caret under the column, then
    /// the hint; one block per problem, in file order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        render(f, &self.sources, &self.diagnostics, "error", "hint")
    }
}

/// What `plugjail check` warns about in a valid profile (the cross-layer lint): shown like
/// errors, as `FILE:LINE:COL: warning: MESSAGE`, the line, and the fix.
#[derive(Debug, Default)]
pub struct ProfileWarnings {
    pub sources: Sources,
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ProfileWarnings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        render(f, &self.sources, &self.diagnostics, "warning", "fix")
    }
}

/// One block per diagnostic: the place, the line with a caret, the hint (or fix).
fn render(
    f: &mut fmt::Formatter<'_>,
    sources: &Sources,
    diagnostics: &[Diagnostic],
    severity: &str,
    hint_label: &str,
) -> fmt::Result {
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            writeln!(f)?;
        }
        let path = sources.path(d.pos.file).display();
        if d.pos.line == 0 {
            writeln!(f, "{path}: {severity}: {}", d.message)?;
        } else {
            writeln!(
                f,
                "{path}:{}:{}: {severity}: {}",
                d.pos.line, d.pos.col, d.message
            )?;
        }
        if let Some(text) = sources.line_text(d.pos) {
            let (shown, col) = crop(text, d.pos.col);
            let gutter = d.pos.line.to_string();
            writeln!(f, " {gutter} | {shown}")?;
            let pad = " ".repeat(gutter.len());
            writeln!(f, " {pad} | {}^", " ".repeat(caret_offset(&shown, col)))?;
        }
        if let Some(hint) = &d.hint {
            writeln!(f, "  = {hint_label}: {hint}")?;
        }
    }
    Ok(())
}

impl std::error::Error for ProfileErrors {}

/// A window of a long line around column `col`, and the column within the window.
fn crop(text: &str, col: u32) -> (String, u32) {
    const WINDOW: usize = 100;
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= WINDOW {
        return (text.to_string(), col);
    }
    let at = (col as usize).saturating_sub(1).min(chars.len());
    let start = at.saturating_sub(WINDOW / 2);
    let end = (start + WINDOW).min(chars.len());
    let mut shown = String::from(if start > 0 { "…" } else { "" });
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    // at - start <= at <= col, so it fits col's u32 (the fallback is never taken).
    let col = u32::try_from(at - start).map_or(col, |c| c + 1 + u32::from(start > 0));
    (shown, col)
}

/// Display width before column `col` (1-based, counted in characters), keeping tabs so the
/// caret lines up under the offending character.
fn caret_offset(text: &str, col: u32) -> usize {
    text.chars()
        .take((col as usize).saturating_sub(1))
        .map(|c| if c == '\t' { 8 } else { 1 })
        .sum()
}

/// Collects diagnostics while a profile is read, so that every problem is reported.
#[derive(Debug, Default)]
pub struct Collector {
    pub diagnostics: Vec<Diagnostic>,
}

impl Collector {
    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            pos,
            message: message.into(),
            hint: None,
        });
    }

    pub fn error_hint(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            pos,
            message: message.into(),
            hint: Some(hint.into()),
        });
    }

    /// An error with a "did you mean" hint when one of `candidates` is close to `word`.
    pub fn error_suggest<'a>(
        &mut self,
        pos: Pos,
        message: impl Into<String>,
        word: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) {
        match closest(word, candidates) {
            Some(best) => self.error_hint(pos, message, format!("did you mean `{best}`?")),
            None => self.error(pos, message),
        }
    }
}

/// The candidate nearest to `word` by edit distance, if it is near enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// A diagnostic as tests compare it: (line, column, message, hint).
#[cfg(test)]
pub(crate) type Listed = (u32, u32, String, Option<String>);

/// The errors of reading `text` (a profile or a host configuration), in file order;
/// panics if it read without error.
#[cfg(test)]
pub(crate) fn errors_of<T: fmt::Debug>(read: Result<T, ProfileErrors>, text: &str) -> Vec<Listed> {
    match read {
        Ok(value) => panic!("expected errors for:\n{text}\ngot {value:#?}"),
        Err(e) => e
            .diagnostics
            .into_iter()
            .map(|d| (d.pos.line, d.pos.col, d.message, d.hint))
            .collect(),
    }
}

/// The one error of a list that must have exactly one.
#[cfg(test)]
pub(crate) fn only(mut all: Vec<Listed>) -> Listed {
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names_only() {
        assert_eq!(
            closest("opneat", ["openat", "open", "read"]),
            Some("openat")
        );
        assert_eq!(
            closest("read_only", ["read_only", "read_write"]),
            Some("read_only")
        );
        assert_eq!(closest("zzzzzz", ["openat", "read"]), None);
    }

    #[test]
    fn renders_file_line_col_snippet_and_caret() {
        let mut sources = Sources::default();
        let file = sources.add(
            Path::new("p.yaml"),
            "version: 1\nlimits:\n  memory: 64Q\n".into(),
        );
        let errors = ProfileErrors {
            sources,
            diagnostics: vec![Diagnostic {
                pos: Pos {
                    file,
                    line: 3,
                    col: 11,
                },
                message: "bad size".into(),
                hint: Some("use 64M".into()),
            }],
        };
        assert_eq!(
            errors.to_string(),
            "p.yaml:3:11: error: bad size\n 3 |   memory: 64Q\n   |           ^\n  = hint: use 64M\n"
        );
    }
}

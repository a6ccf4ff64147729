//! Loading a profile file: size cap, YAML parse, `extends:` chain, merge, then reading.
//! The first two steps are shared with the host configuration ([`Document`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_saphyr::MessageFormatter;

use super::cache::Cache;
use super::diag::{Collector, Diagnostic, ProfileErrors, ProfileWarnings, Sources};
use super::lint::{self, JailUser};
use super::model::Profile;
use super::read;
use super::yaml::{self, Node, Pos, Value};

/// Profiles are short; a file beyond this is a mistake or an attack, not a policy.
pub const MAX_PROFILE_BYTES: u64 = 1 << 20;
/// How many `extends:` hops a profile may take.
const MAX_EXTENDS_DEPTH: usize = 8;

/// Loads, merges and validates the profile at `path`.
pub fn load(path: &Path) -> Result<Profile, ProfileErrors> {
    Document::read(path, "profile").into_profile()
}

/// Validates profile text that did not come from a file (tests, `explain` round trips).
pub fn load_str(name: &Path, text: &str) -> Result<Profile, ProfileErrors> {
    Document::parse(name, text).into_profile()
}

/// One YAML file read (size-capped) and parsed, not yet read as anything: `check` looks at
/// the tree to decide whether it is a profile or a host configuration, so each file is
/// parsed once, and both readers report through the same [`Loader`].
pub(crate) struct Document {
    pub path: PathBuf,
    /// None when the file could not be read or parsed (the loader holds the error).
    pub root: Option<Node>,
    pub loader: Loader,
}

impl Document {
    /// Reads and parses `path`; `what` names the file in read errors ("profile").
    pub fn read(path: &Path, what: &str) -> Document {
        let mut loader = Loader::default();
        let root = loader.read(path, None, what);
        Document {
            path: path.to_path_buf(),
            root,
            loader,
        }
    }

    /// Parses `text` as if it had been read from `name`.
    pub fn parse(name: &Path, text: &str) -> Document {
        let mut loader = Loader::default();
        let file = loader.sources.add(name, text.to_owned());
        let root = loader.keep(parse(text, file));
        Document {
            path: name.to_path_buf(),
            root,
            loader,
        }
    }

    /// Reads the document as a profile: `version`, `extends:`, merge, then every section.
    pub fn into_profile(mut self) -> Result<Profile, ProfileErrors> {
        let merged = self.root.take().and_then(|root| {
            self.loader
                .check_document(root, &self.path, &mut Vec::new())
        });
        let profile = merged.and_then(|root| read::profile(&mut self.loader.collector, &root));
        self.loader.finish(profile)
    }

    /// Reads the document as a profile like [`Document::into_profile`], then lints the
    /// valid profile across its layers (`plugjail check`): warnings, not errors, each at
    /// the place in the file (or base) that wrote the value.
    pub fn into_linted(
        mut self,
        users: &[JailUser],
    ) -> Result<(Profile, ProfileWarnings), ProfileErrors> {
        let merged = self.root.take().and_then(|root| {
            self.loader
                .check_document(root, &self.path, &mut Vec::new())
        });
        let profile = merged
            .as_ref()
            .and_then(|root| read::profile(&mut self.loader.collector, root));
        let Loader { sources, collector } = self.loader;
        match (profile, merged) {
            (Some(profile), Some(root)) if collector.diagnostics.is_empty() => {
                let diagnostics = lint::lint(&root, &profile, users);
                Ok((
                    profile,
                    ProfileWarnings {
                        sources,
                        diagnostics,
                    },
                ))
            }
            (_, _) => Loader { sources, collector }.finish(None),
        }
    }
}

/// The files read so far and the problems found in them.
#[derive(Default)]
pub(crate) struct Loader {
    pub sources: Sources,
    pub collector: Collector,
}

impl Loader {
    /// `value` if no problem was found, else every problem in file order.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, ProfileErrors> {
        let mut diagnostics = self.collector.diagnostics;
        match value {
            Some(value) if diagnostics.is_empty() => Ok(value),
            _ => {
                diagnostics.sort_by_key(|d| (d.pos.file, d.pos.line, d.pos.col));
                Err(ProfileErrors {
                    sources: self.sources,
                    diagnostics,
                })
            }
        }
    }

    /// Takes in the problems of another file set (a profile a host configuration names),
    /// keeping their files so that each still points into its own file.
    pub fn absorb(&mut self, errors: ProfileErrors) {
        let offset = self.sources.append(errors.sources);
        self.collector
            .diagnostics
            .extend(errors.diagnostics.into_iter().map(|mut d| {
                d.pos.file += offset;
                d
            }));
    }

    /// Reads one file and everything it extends, returning the merged tree. `chain` holds
    /// the files being read above this one, to catch cycles; `from` is the `extends:` entry
    /// that named this file.
    fn file(&mut self, path: &Path, chain: &mut Vec<PathBuf>, from: Option<Pos>) -> Option<Node> {
        let root = self.read(path, from, "profile")?;
        self.check_document(root, path, chain)
    }

    /// Reads and parses one file; `what` names it in errors, which point at `from` (where
    /// another file named this one) when given.
    fn read(&mut self, path: &Path, from: Option<Pos>, what: &str) -> Option<Node> {
        let text = match read_capped(path, what) {
            Ok(text) => text,
            Err(message) => {
                let file = self.sources.add(path, String::new());
                let pos = from.unwrap_or(Pos {
                    file,
                    line: 0,
                    col: 0,
                });
                self.collector.error(pos, message);
                return None;
            }
        };
        let file = self.sources.len();
        let parsed = match Cache::for_user() {
            Some(cache) => cache.parse(&text, file, parse),
            None => parse(&text, file),
        };
        self.sources.add(path, text);
        self.keep(parsed)
    }

    fn keep(&mut self, parsed: Result<Node, Diagnostic>) -> Option<Node> {
        parsed.map_err(|d| self.collector.diagnostics.push(d)).ok()
    }

    /// Checks `version`, follows `extends:` and merges this document over its bases.
    fn check_document(
        &mut self,
        root: Node,
        path: &Path,
        chain: &mut Vec<PathBuf>,
    ) -> Option<Node> {
        let Value::Map(entries) = &root.value else {
            let found = match root.value {
                Value::Null => "an empty document",
                ref other => other.kind(),
            };
            self.collector.error_hint(
                Pos {
                    file: root.pos.file,
                    line: root.pos.line.max(1),
                    col: root.pos.col.max(1),
                },
                format!("a profile must be a mapping, found {found}"),
                "start with `version: 1`",
            );
            return None;
        };
        let get = |key: &str| {
            entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v)
        };
        match get("version").map(|v| &v.value) {
            Some(Value::Int(1)) => {}
            Some(_) => {
                let pos = get("version").map(|v| v.pos).unwrap_or(root.pos);
                self.collector.error_hint(
                    pos,
                    "unsupported profile version",
                    "this plugjail reads `version: 1`",
                );
            }
            None => self.collector.error_hint(
                root.pos,
                "the profile has no `version`",
                "add `version: 1` as the first line",
            ),
        }
        let bases: Vec<Node> = match get("extends") {
            None => vec![],
            Some(n) => match &n.value {
                Value::Str(_) => vec![n.clone()],
                Value::Seq(items) => items.clone(),
                other => {
                    self.collector.error(
                        n.pos,
                        format!(
                            "`extends` must be a path or a list of paths, found {}",
                            other.kind()
                        ),
                    );
                    vec![]
                }
            },
        };
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        chain.push(canonical);
        let mut merged: Option<Node> = None;
        for base in bases {
            let Some(rel) = base.as_str() else {
                self.collector
                    .error(base.pos, "an `extends` entry must be a path");
                continue;
            };
            // Relative to the file that names it, not to where plugjail runs.
            let base_path = path.parent().unwrap_or(Path::new(".")).join(rel);
            let key = base_path
                .canonicalize()
                .unwrap_or_else(|_| base_path.clone());
            if chain.contains(&key) {
                let cycle: Vec<String> = chain
                    .iter()
                    .chain([&key])
                    .map(|p| p.display().to_string())
                    .collect();
                self.collector.error_hint(
                    base.pos,
                    format!("`extends` makes a cycle: {}", cycle.join(" -> ")),
                    "a base profile must not extend the profiles built on it",
                );
                continue;
            }
            if chain.len() > MAX_EXTENDS_DEPTH {
                self.collector.error(
                    base.pos,
                    format!("`extends` goes more than {MAX_EXTENDS_DEPTH} files deep"),
                );
                continue;
            }
            if let Some(base_root) = self.file(&base_path, chain, Some(base.pos)) {
                merged = Some(match merged {
                    Some(m) => merge(m, base_root),
                    None => base_root,
                });
            }
        }
        chain.pop();
        let own = strip_key(root, "extends");
        Some(match merged {
            Some(base) => merge(base, own),
            None => own,
        })
    }
}

/// Parses YAML, turning a syntax error into a diagnostic at the place serde-saphyr names.
fn parse(text: &str, file: usize) -> Result<Node, Diagnostic> {
    yaml::parse(text, file).map_err(|err| {
        let (line, col) = err
            .location()
            .map(|l| {
                let at = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
                (at(l.line()), at(l.column()))
            })
            .unwrap_or((0, 0));
        let message = serde_saphyr::UserMessageFormatter.format_message(err.without_snippet());
        Diagnostic {
            pos: Pos { file, line, col },
            message: yaml_message(&message),
            hint: None,
        }
    })
}

/// Reads a file, refusing anything larger than [`MAX_PROFILE_BYTES`] before reading it all.
/// `what` names the file in errors ("profile", "host configuration").
fn read_capped(path: &Path, what: &str) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {what}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    if bytes.len() as u64 > MAX_PROFILE_BYTES {
        return Err(format!(
            "{what} is larger than {} KiB; a {what} is a short policy, not data",
            MAX_PROFILE_BYTES >> 10
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{what} is not UTF-8 text (bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// serde-saphyr's messages, made to read as ours (lowercase, no trailing location).
fn yaml_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    let first = first.split(" at line ").next().unwrap_or(first);
    if first.contains("limits breached") && first.contains("Depth") {
        return "invalid YAML: nested deeper than any profile needs".to_string();
    }
    if first.contains("limits breached") {
        return "invalid YAML: the document is larger or more deeply aliased than any profile \
                needs (an alias bomb?)"
            .to_string();
    }
    // Lowercase the first letter unless it starts an acronym ("YAML").
    let mut chars = first.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if !b.is_uppercase() => {
            format!("invalid YAML: {}{b}{}", a.to_lowercase(), chars.as_str())
        }
        _ => format!("invalid YAML: {first}"),
    }
}

fn strip_key(mut node: Node, key: &str) -> Node {
    if let Value::Map(entries) = &mut node.value {
        entries.retain(|(k, _)| k.as_str() != Some(key));
    }
    node
}

/// Lays `over` on top of `base`: mappings merge key by key, lists concatenate (base
/// first), anything else is replaced. Positions stay with the file that wrote each value.
pub fn merge(base: Node, over: Node) -> Node {
    match (base.value, over.value) {
        (Value::Map(mut base_entries), Value::Map(over_entries)) => {
            for (key, value) in over_entries {
                match base_entries.iter_mut().find(|(k, _)| k.value == key.value) {
                    Some(slot) => {
                        let old = std::mem::replace(
                            &mut slot.1,
                            Node {
                                pos: value.pos,
                                value: Value::Null,
                            },
                        );
                        slot.1 = merge(old, value);
                    }
                    None => base_entries.push((key, value)),
                }
            }
            Node {
                pos: over.pos,
                value: Value::Map(base_entries),
            }
        }
        (Value::Seq(mut base_items), Value::Seq(over_items)) => {
            base_items.extend(over_items);
            Node {
                pos: over.pos,
                value: Value::Seq(base_items),
            }
        }
        (_, value) => Node {
            pos: over.pos,
            value,
        },
    }
}

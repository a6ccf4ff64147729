//! The root filesystem skeleton: the empty directories and symlinks a jail root starts with.
//!
//! The shipped skeleton is `rootfs-template/` in the source tree. It is compiled in as
//! [`BUILTIN`] so an installed binary needs no data files; a unit test keeps the two
//! identical. A profile may name its own template directory instead, read at plan time.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One entry of a template, relative to the jail root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir(PathBuf),
    Symlink { path: PathBuf, target: PathBuf },
}

impl Entry {
    pub fn path(&self) -> &Path {
        match self {
            Entry::Dir(p) | Entry::Symlink { path: p, .. } => p,
        }
    }
}

/// Placeholder files that keep empty directories in git; never copied.
const KEEP: &str = ".keep";

/// `rootfs-template/`: (path, symlink target). The symlinks suit merged-/usr hosts; on a
/// host where /lib is a real directory the profile binds it and the bind wins.
pub const BUILTIN: &[(&str, Option<&str>)] = &[
    ("bin", Some("usr/bin")),
    ("dev", None),
    ("etc", None),
    ("home", None),
    ("lib", Some("usr/lib")),
    ("lib64", Some("usr/lib64")),
    ("proc", None),
    ("run", None),
    ("sbin", Some("usr/sbin")),
    ("tmp", None),
    ("usr", None),
    ("var", None),
];

pub fn builtin() -> Vec<Entry> {
    BUILTIN
        .iter()
        .map(|(path, target)| match target {
            Some(t) => Entry::Symlink {
                path: PathBuf::from(path),
                target: PathBuf::from(t),
            },
            None => Entry::Dir(PathBuf::from(path)),
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read rootfs template {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "rootfs template entry {path} is neither a directory nor a symlink (only those are copied)"
    )]
    FileType { path: PathBuf },
}

/// Reads a template directory: every directory and symlink under `root`, parents first.
pub fn read_dir(root: &Path) -> Result<Vec<Entry>, TemplateError> {
    let mut out = Vec::new();
    walk(root, Path::new(""), &mut out)?;
    Ok(out)
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<Entry>) -> Result<(), TemplateError> {
    let dir = root.join(rel);
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TemplateError::Read { path, source }
    };
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(read_err(&dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(read_err(&dir))?;
    names.sort();
    for name in names {
        if name == KEEP {
            continue;
        }
        let rel_path = rel.join(&name);
        let full = root.join(&rel_path);
        let meta = fs::symlink_metadata(&full).map_err(read_err(&full))?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&full).map_err(read_err(&full))?;
            out.push(Entry::Symlink {
                path: rel_path,
                target,
            });
        } else if meta.is_dir() {
            out.push(Entry::Dir(rel_path.clone()));
            walk(root, &rel_path, out)?;
        } else {
            return Err(TemplateError::FileType { path: full });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_matches_the_source_tree() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-template");
        assert_eq!(read_dir(&dir).unwrap(), builtin());
    }

    #[test]
    fn regular_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("plugjail-tpl-{}", std::process::id()));
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::write(dir.join("etc/passwd"), "x").unwrap();
        let err = read_dir(&dir).unwrap_err();
        fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(err, TemplateError::FileType { .. }), "{err}");
    }
}

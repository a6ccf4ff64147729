//! A per-user cache of parsed profile files, so that a cold start does not pay the YAML
//! parser (about 0.5 ms for `default.yaml` here, the largest part of loading a profile).
//!
//! An entry is the node tree ([`Node`]: values with their lines and columns) of one file's
//! text, named by a SHA-256 over the text, this cache format and the plugjail executable's
//! identity (its path's device, inode, size and mtime, and the version), so a rebuilt or
//! upgraded plugjail never reads an older parser's result. Everything after the parse —
//! `extends:`, merging, every check of the reader — runs on the cached tree exactly as on
//! a fresh one, so the cache cannot make plugjail accept a profile it would refuse.
//!
//! What the cache can do is say that a text means a different tree, so it is trusted only
//! where nobody but the user running plugjail could have written it: the directory and each
//! entry must be owned by the effective user, not writable by group or others, and not
//! symbolic links; anything else is ignored (and never written to), never shared between
//! users. The user themself is not a threat here: they can run anything unjailed.
//!
//! Where: `$PLUGJAIL_CACHE` (a directory, or `off`), else `$XDG_CACHE_HOME/plugjail/parsed`,
//! else `$HOME/.cache/plugjail/parsed`. Each entry is a few KiB; beyond [`MAX_ENTRIES`] the
//! oldest are removed when a new one is written. Any failure only means a parse.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::yaml::{Node, Value};

/// Bumped whenever the entry format or its meaning changes.
const FORMAT: &[u8] = b"plugjail profile parse cache 1\0";
/// Entries kept at most; profiles change rarely, so this is many versions of many files.
pub const MAX_ENTRIES: usize = 64;
/// Larger entries are not read (a tree of a 1 MiB profile, the reader's cap, stays below).
const MAX_ENTRY_BYTES: u64 = 16 << 20;

/// The cache directory, checked to be the effective user's own.
pub struct Cache {
    dir: PathBuf,
    exe: Vec<u8>,
}

impl Cache {
    /// The user's cache, if there is one that may be trusted (created if missing).
    pub fn for_user() -> Option<Cache> {
        let dir = match std::env::var_os("PLUGJAIL_CACHE") {
            Some(v) if v == "off" || v.is_empty() => return None,
            Some(v) => PathBuf::from(v),
            None => default_dir()?,
        };
        Cache::at(dir)
    }

    /// The cache in `dir` (created 0700 if missing), if it is the effective user's own.
    pub fn at(dir: PathBuf) -> Option<Cache> {
        if fs::symlink_metadata(&dir).is_err() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .ok()?;
        }
        let meta = fs::symlink_metadata(&dir).ok()?;
        if !meta.is_dir() || !owned_privately(&meta) {
            return None;
        }
        Some(Cache {
            dir,
            exe: exe_identity(),
        })
    }

    /// Parses `text` for source file `file` through the cache: a trusted entry's tree, or
    /// `parse`'s, which is stored when it succeeded.
    pub fn parse<E>(
        &self,
        text: &str,
        file: usize,
        parse: impl FnOnce(&str, usize) -> Result<Node, E>,
    ) -> Result<Node, E> {
        let path = self.entry(text);
        if let Some(mut node) = self.load(&path) {
            set_file(&mut node, file);
            return Ok(node);
        }
        let parsed = parse(text, file)?;
        self.store(&path, &parsed);
        Ok(parsed)
    }

    fn entry(&self, text: &str) -> PathBuf {
        let mut hash = Sha256::new();
        hash.update(FORMAT);
        hash.update((self.exe.len() as u64).to_le_bytes());
        hash.update(&self.exe);
        hash.update(text.as_bytes());
        let mut name: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        name.push_str(".json");
        self.dir.join(name)
    }

    /// The entry's tree, if it exists, is the user's own and reads back.
    fn load(&self, path: &Path) -> Option<Node> {
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || !owned_privately(&meta) || meta.len() > MAX_ENTRY_BYTES {
            return None;
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).ok()?);
        file.take(MAX_ENTRY_BYTES).read_to_end(&mut bytes).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the entry (a private temporary file renamed into place), then keeps the
    /// directory within [`MAX_ENTRIES`]. (JSON carries every tree: the parser refuses NaN
    /// and infinities.)
    fn store(&self, path: &Path, node: &Node) {
        let Ok(json) = serde_json::to_vec(node) else {
            return;
        };
        let mut tmp = OsString::from(path.as_os_str());
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&json));
        if written.and_then(|()| fs::rename(&tmp, path)).is_err() {
            let _ = fs::remove_file(&tmp);
            return;
        }
        self.prune();
    }

    /// Removes the oldest entries beyond [`MAX_ENTRIES`].
    fn prune(&self) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(i64, PathBuf)> = dir
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| Some((e.metadata().ok()?.mtime(), e.path())))
            .collect();
        if entries.len() <= MAX_ENTRIES {
            return;
        }
        entries.sort();
        for (_, path) in &entries[..entries.len() - MAX_ENTRIES] {
            let _ = fs::remove_file(path);
        }
    }
}

fn default_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(v) if Path::new(&v).is_absolute() => PathBuf::from(v),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    base.is_absolute()
        .then(|| base.join("plugjail").join("parsed"))
}

/// Owned by the effective user and not writable by anyone else.
fn owned_privately(meta: &fs::Metadata) -> bool {
    meta.uid() == nix::unistd::geteuid().as_raw() && meta.permissions().mode() & 0o022 == 0
}

/// The running executable's version and file identity: a rebuild changes it.
fn exe_identity() -> Vec<u8> {
    let mut id = env!("CARGO_PKG_VERSION").as_bytes().to_vec();
    if let Ok(m) = fs::metadata("/proc/self/exe") {
        for n in [m.dev(), m.ino(), m.size()] {
            id.extend_from_slice(&n.to_le_bytes());
        }
        id.extend_from_slice(&m.mtime().to_le_bytes());
        id.extend_from_slice(&m.mtime_nsec().to_le_bytes());
    }
    id
}

fn set_file(node: &mut Node, file: usize) {
    node.pos.file = file;
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| set_file(n, file)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            set_file(k, file);
            set_file(v, file);
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests;

//! Temporary directories and unique names: cargo's test scratch directory, [`TempDir`]
//! (removed on drop, with a chosen mode), `chmod`.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::outside_profiles;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique name for this process: `tag-pid-counter`.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

/// cargo's scratch directory for integration tests (`target/tmp`), made searchable by
/// uid 65534, for what tests build and bind on purpose (programs, profiles, inputs). It
/// lies wherever the checkout does, possibly beneath a path a profile grants (`/tmp`):
/// host files the jail must not reach go to [`outside_profiles`] instead.
pub fn target_tmp() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        chmod(&dir, 0o755);
        dir
    })
}

/// A temporary directory, removed (recursively) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new directory under [`target_tmp`] with `mode` (e.g. 0o755 so uid 65534 can read
    /// what is in it, 0o777 so it can also write there).
    pub fn new(tag: &str, mode: u32) -> TempDir {
        TempDir::new_in(target_tmp(), tag, mode)
    }

    /// A new directory under [`outside_profiles`], for host files the jail must not reach.
    pub fn outside_profiles(tag: &str, mode: u32) -> TempDir {
        TempDir::new_in(outside_profiles(), tag, mode)
    }

    /// A new directory under the system temp dir (`/tmp`).
    pub fn in_system_tmp(tag: &str, mode: u32) -> TempDir {
        TempDir::new_in(&std::env::temp_dir(), tag, mode)
    }

    pub fn new_in(base: &Path, tag: &str, mode: u32) -> TempDir {
        let path = base.join(unique(&format!("plugjail-test-{tag}")));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        let dir = TempDir { path };
        dir.chmod(mode);
        dir
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    pub fn chmod(&self, mode: u32) {
        chmod(&self.path, mode);
    }

    /// Writes a file in the directory with `mode` and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        chmod(&path, mode);
        path
    }

    /// A subdirectory with `mode`.
    pub fn subdir(&self, name: &str, mode: u32) -> PathBuf {
        let path = self.join(name);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        chmod(&path, mode);
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            eprintln!("warning: cannot remove {}: {e}", self.path.display());
        }
    }
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

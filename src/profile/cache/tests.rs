use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Cache, MAX_ENTRIES};
use crate::profile::yaml::{self, Node, Value};

const TEXT: &str = "version: 1\nhostname: jail\nlimits: { memory: 64M, cpu: 0.5 }\n\
    list: [a, 2, -170141183460469231731687303715884105728, true, ~, 1e-300]\n";

/// A fresh directory under the system temp directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("plugjail-cache-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn parse(text: &str, file: usize) -> Result<Node, serde_saphyr::Error> {
    yaml::parse(text, file)
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// What the cache returns is what the parser returned, positions and all (the file index
/// being the caller's), and the second parse comes from the entry, not the parser.
#[test]
fn a_stored_tree_reads_back_the_same() {
    let tmp = TempDir::new("roundtrip");
    let cache = Cache::at(tmp.0.clone()).expect("a new private directory is usable");
    assert_eq!(
        fs::metadata(&tmp.0).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let fresh = cache.parse(TEXT, 3, parse).unwrap();
    let stored = entries(&tmp.0);
    assert_eq!(stored.len(), 1, "one entry: {stored:?}");
    assert_eq!(
        fs::metadata(&stored[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let cached = cache
        .parse(TEXT, 3, |_, _| -> Result<Node, ()> {
            panic!("the parser ran although the entry exists")
        })
        .unwrap();
    assert_eq!(cached, fresh);
    let other_file = cache.parse(TEXT, 7, |_, _| Err(())).unwrap();
    assert_eq!(other_file.pos.file, 7);
}

/// An entry named for the text says what the text means: a tampered entry that still
/// parses as a tree is what plugjail would read, so only a private one is trusted.
#[test]
fn entries_and_directories_others_could_write_are_ignored() {
    let tmp = TempDir::new("trust");
    let cache = Cache::at(tmp.0.clone()).unwrap();
    cache.parse(TEXT, 0, parse).unwrap();
    let entry = entries(&tmp.0).remove(0);
    let forged = fs::read_to_string(&entry)
        .unwrap()
        .replace("jail", "forged");
    fs::write(&entry, forged).unwrap();
    let hostname = |node: &Node| match &node.value {
        Value::Map(m) => m[1].1.as_str().map(str::to_owned),
        _ => None,
    };
    // The user's own entry is believed (that is what a cache is for) ...
    assert_eq!(
        hostname(&cache.parse(TEXT, 0, parse).unwrap()).as_deref(),
        Some("forged")
    );
    // ... but not once group or others may write it (the parse then replaces it),
    fs::set_permissions(&entry, fs::Permissions::from_mode(0o620)).unwrap();
    assert_eq!(
        hostname(&cache.parse(TEXT, 0, parse).unwrap()).as_deref(),
        Some("jail")
    );
    // nor through a symbolic link, even to a private file,
    let forged = fs::read_to_string(&entry)
        .unwrap()
        .replace("jail", "forged");
    let target = tmp.0.join("elsewhere");
    fs::write(&target, forged).unwrap();
    fs::remove_file(&entry).unwrap();
    std::os::unix::fs::symlink(&target, &entry).unwrap();
    assert_eq!(
        hostname(&cache.parse(TEXT, 0, parse).unwrap()).as_deref(),
        Some("jail")
    );
    // nor when another user owns it (root can make one here),
    if nix::unistd::geteuid().is_root() {
        fs::remove_file(&entry).unwrap();
        cache.parse(TEXT, 0, parse).unwrap();
        let forged = fs::read_to_string(&entry)
            .unwrap()
            .replace("jail", "forged");
        fs::write(&entry, forged).unwrap();
        let nobody = Some(nix::unistd::Uid::from_raw(65534));
        nix::unistd::chown(&entry, nobody, None).unwrap();
        assert_eq!(
            hostname(&cache.parse(TEXT, 0, parse).unwrap()).as_deref(),
            Some("jail")
        );
    }
    // nor in a directory others may write.
    fs::set_permissions(&tmp.0, fs::Permissions::from_mode(0o770)).unwrap();
    assert!(Cache::at(tmp.0.clone()).is_none());
}

/// A damaged entry is a miss, and the parse replaces it.
#[test]
fn a_damaged_entry_is_parsed_again() {
    let tmp = TempDir::new("damaged");
    let cache = Cache::at(tmp.0.clone()).unwrap();
    let fresh = cache.parse(TEXT, 0, parse).unwrap();
    let entry = entries(&tmp.0).remove(0);
    fs::write(&entry, "{ not json").unwrap();
    assert_eq!(cache.parse(TEXT, 0, parse).unwrap(), fresh);
    assert_eq!(
        cache.parse(TEXT, 0, |_, _| Err(())).unwrap(),
        fresh,
        "the parse was stored again"
    );
}

/// Parse errors are never stored; the directory stays within its size.
#[test]
fn errors_are_not_stored_and_old_entries_go() {
    let tmp = TempDir::new("bounds");
    let cache = Cache::at(tmp.0.clone()).unwrap();
    assert!(cache.parse("a: [", 0, parse).is_err());
    assert!(entries(&tmp.0).is_empty());
    for i in 0..MAX_ENTRIES + 5 {
        cache.parse(&format!("n: {i}\n"), 0, parse).unwrap();
    }
    assert_eq!(entries(&tmp.0).len(), MAX_ENTRIES);
}

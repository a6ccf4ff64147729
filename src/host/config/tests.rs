//! Host configuration reading: a full file, the defaults, every validation rule with its
//! line and column, and the profiles and plugin files a configuration names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::profile::ProfileErrors;
use crate::profile::diag::{Listed, errors_of, only};

/// A directory holding a plugin file `p.so`, a valid profile `ok.yaml` and a broken one
/// `bad.yaml`; configurations are read as `host.yaml` in it.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("p.so"), b"").unwrap();
        std::fs::write(dir.path().join("ok.yaml"), "version: 1\n").unwrap();
        // Allows what shared-memory calls need (`shm`).
        std::fs::write(
            dir.path().join("futex.yaml"),
            "version: 1\nseccomp:\n  load: {allow: [{syscalls: [futex]}]}\n  serve: {allow: [{syscalls: [futex]}]}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("bad.yaml"),
            "version: 1\nlimits:\n  memroy: 64M\n  pids: 0\n",
        )
        .unwrap();
        Dir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    fn load(&self, text: &str) -> Result<HostConfig, ProfileErrors> {
        load_str(&self.path("host.yaml"), text)
    }
}

/// The errors of `text` as (line, col, message, hint), in file order.
fn errors(text: &str) -> Vec<Listed> {
    errors_of(Dir::new().load(text), text)
}

/// The single error of `text`.
fn error(text: &str) -> Listed {
    only(errors(text))
}

/// The single error's (line, col, message).
fn at(text: &str) -> (u32, u32, String) {
    let (line, col, message, _) = error(text);
    (line, col, message)
}

/// A valid one-plugin file; `extra` lines (already indented) go into the plugin's entry,
/// from line 6.
fn with(extra: &str) -> String {
    format!("version: 1\nplugins:\n  - id: a\n    plugin: p.so\n    profile: ok.yaml\n{extra}")
}

#[test]
fn a_full_file_reads_into_every_field() {
    let dir = Dir::new();
    let text = "\
version: 1
plugins:
  - id: hello
    plugin: p.so
    profile: ok.yaml
    cpus: [0, 1]
    pool: {warm: 1, max: 2, queue: 64, recycle_calls: 1000, recycle_time: 10m}
    restart: {backoff: 100ms, backoff_max: 30s, budget: 5, window: 1m}
    call_time: 2s
    start_time: 20s
    stop_time: 5s
    when_paused: fail
    health: {method: greet, input: \"ping\"}
  - id: csv2json_2
    plugin: p.so
    profile: ok.yaml
";
    let config = dir.load(text).unwrap_or_else(|e| panic!("{e}"));
    let expected = HostConfig {
        plugins: vec![
            PluginConfig {
                cpus: vec![0, 1],
                pool: PoolConfig {
                    warm: 1,
                    max: 2,
                    queue: 64,
                    recycle_calls: Some(1000),
                    recycle_time: Some(Duration::from_secs(600)),
                },
                restart: RestartConfig {
                    backoff: Duration::from_millis(100),
                    backoff_max: Duration::from_secs(30),
                    budget: 5,
                    window: Duration::from_secs(60),
                },
                call_time: Some(Duration::from_secs(2)),
                start_time: Duration::from_secs(20),
                stop_time: Duration::from_secs(5),
                when_paused: WhenPaused::Fail,
                health: Some(HealthCheck {
                    method: "greet".into(),
                    input: b"ping".to_vec(),
                }),
                ..PluginConfig::new("hello", dir.path("p.so"), dir.path("ok.yaml"))
            },
            PluginConfig::new("csv2json_2", dir.path("p.so"), dir.path("ok.yaml")),
        ],
    };
    assert_eq!(config, expected);
}

#[test]
fn a_minimal_plugin_gets_the_defaults() {
    let dir = Dir::new();
    let config = dir.load(&with("")).unwrap_or_else(|e| panic!("{e}"));
    let expected = PluginConfig::new("a", dir.path("p.so"), dir.path("ok.yaml"));
    assert_eq!(config.plugins, vec![expected]);
    let health = Dir::new().load(&with("    health: {method: m}\n")).unwrap();
    let input = &health.plugins[0].health.as_ref().unwrap().input;
    assert!(input.is_empty(), "health input defaults to empty");
}

#[test]
fn version_must_be_one_and_present() {
    let text = "version: 2\nplugins: []\n";
    let all = errors(text);
    assert_eq!((all[0].0, all[0].1), (1, 10));
    assert_eq!(all[0].2, "unsupported host configuration version");
    let text = with("").replace("version: 1\n", "");
    let (_, _, message, hint) = error(&text);
    assert_eq!(message, "the host configuration has no `version`");
    assert_eq!(hint.as_deref(), Some("add `version: 1` as the first line"));
}

#[test]
fn plugins_must_be_a_non_empty_list() {
    assert_eq!(
        at("version: 1\nplugins: []\n"),
        (2, 10, "`plugins` is empty: a host needs a plugin".into())
    );
    assert_eq!(
        at("version: 1\nplugins: {a: 1}\n").2,
        "`plugins` must be a list, not a mapping"
    );
    assert_eq!(
        at("version: 1\n").2,
        "the host configuration has no `plugins`"
    );
}

#[test]
fn a_document_that_is_not_a_mapping_is_one_error() {
    assert_eq!(
        at("- a\n- b\n"),
        (
            1,
            1,
            "a host configuration must be a mapping, found a list".into()
        )
    );
    assert_eq!(
        at("").2,
        "a host configuration must be a mapping, found an empty document"
    );
}

#[test]
fn unknown_keys_are_reported_where_written_with_suggestions() {
    let all = errors(&format!(
        "{}    pol: {{}}\n    pool: {{maxx: 2, recycle_call: 5}}\nverison: 1\n",
        with("")
    ));
    let got: Vec<_> = all
        .iter()
        .map(|(l, c, m, h)| (*l, *c, m.as_str(), h.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (
                6,
                5,
                "unknown key `pol` in `plugins entry`",
                Some("did you mean `pool`?")
            ),
            (
                7,
                12,
                "unknown key `maxx` in `pool`",
                Some("did you mean `max`?")
            ),
            (
                7,
                21,
                "unknown key `recycle_call` in `pool`",
                Some("did you mean `recycle_calls`?")
            ),
            (
                8,
                1,
                "unknown key `verison` in `host configuration`",
                Some("did you mean `version`?")
            ),
        ]
    );
}

#[test]
fn duplicate_keys_are_refused_where_written() {
    let (line, _, message, _) = error(&with("    cpus: [0]\n    cpus: [1]\n"));
    assert_eq!(line, 7);
    assert!(message.contains("duplicate"), "{message}");
}

#[test]
fn wrong_types_say_what_was_expected() {
    assert_eq!(
        at(&with("    cpus: 3\n")),
        (6, 11, "expected a list, found an integer".into())
    );
    assert_eq!(
        at(&with("    pool: [1]\n")),
        (6, 11, "`pool` must be a mapping, not a list".into())
    );
    assert_eq!(
        at(&with("    start_time: 5\n")),
        (6, 17, "`5` has no unit; write for example `5s`".into())
    );
    assert_eq!(
        at(&with("    health: {method: m, input: 5}\n")),
        (6, 32, "expected a string, found an integer".into())
    );
    assert_eq!(
        at(&with("    when_paused: later\n")),
        (6, 18, "`later` is not one of wait, fail".into())
    );
}

#[test]
fn ids_follow_the_pattern() {
    let id = |id: &str| with("").replace("id: a", &format!("id: \"{id}\""));
    for bad in ["Hello", "a b", "é", "", &"x".repeat(65)] {
        let (line, col, message, hint) = error(&id(bad));
        assert_eq!((line, col), (3, 9), "{bad}");
        assert_eq!(message, format!("`{bad}` is not a valid plugin id"));
        assert_eq!(hint.as_deref(), Some("1 to 64 of a-z, 0-9, `_` and `-`"));
    }
    for good in ["a-b_0", &"x".repeat(64)] {
        Dir::new().load(&id(good)).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn a_repeated_id_points_at_the_second_and_names_the_first() {
    let text = format!(
        "{}  - id: a\n    plugin: p.so\n    profile: ok.yaml\n",
        with("")
    );
    let (line, col, message, hint) = error(&text);
    assert_eq!((line, col), (6, 9));
    assert_eq!(message, "plugin id `a` is used twice (first at line 3)");
    assert_eq!(hint.as_deref(), Some("ids must be unique in the file"));
}

#[test]
fn each_plugin_needs_id_plugin_and_profile() {
    let all = errors("version: 1\nplugins:\n  - cpus: [0]\n");
    let messages: Vec<_> = all.iter().map(|e| (e.0, e.1, e.2.as_str())).collect();
    assert_eq!(
        messages,
        [
            (3, 5, "this plugin has no `id`"),
            (3, 5, "this plugin has no `plugin`"),
            (3, 5, "this plugin has no `profile`"),
        ]
    );
}

#[test]
fn cpus_are_in_range_and_listed_once() {
    assert_eq!(
        at(&with("    cpus: [0, 1024]\n")),
        (6, 15, "1024 is out of range (0 to 1023)".into())
    );
    assert_eq!(
        at(&with("    cpus: [3, 1, 3]\n")),
        (6, 18, "CPU 3 is listed twice".into())
    );
    let config = Dir::new().load(&with("    cpus: []\n")).unwrap();
    assert!(config.plugins[0].cpus.is_empty());
}

#[test]
fn pool_bounds() {
    let pool = |body: &str| at(&with(&format!("    pool: {{{body}}}\n")));
    assert_eq!(
        pool("warm: 3, max: 2"),
        (6, 18, "pool.warm (3) is more than pool.max (2)".into())
    );
    // Against max's default (1), pointing at the key written.
    assert_eq!(
        pool("warm: 2"),
        (6, 18, "pool.warm (2) is more than pool.max (1)".into())
    );
    assert_eq!(
        pool("warm: 0, max: 0"),
        (6, 26, "0 is out of range (1 to 256)".into())
    );
    assert_eq!(pool("max: 257").2, "257 is out of range (1 to 256)");
    assert_eq!(pool("queue: 65537").2, "65537 is out of range (0 to 65536)");
    assert_eq!(
        pool("recycle_calls: 0").2,
        "`recycle_calls` must be at least 1"
    );
    assert_eq!(
        pool("recycle_time: 0s").2,
        "a duration limit must be longer than zero"
    );
    let config = Dir::new()
        .load(&with("    pool: {warm: 0, max: 256, queue: 65536}\n"))
        .unwrap();
    assert_eq!(config.plugins[0].pool.queue, 65536);
    // Only an unreadable max: no comparison with a value that was never read.
    assert_eq!(
        errors(&with("    pool: {warm: 5, max: x}\n")).len(),
        1,
        "one error, for max"
    );
}

#[test]
fn restart_bounds() {
    let restart = |body: &str| error(&with(&format!("    restart: {{{body}}}\n")));
    let (line, col, message, hint) = restart("backoff: 1m, backoff_max: 30s");
    assert_eq!((line, col), (6, 24));
    assert_eq!(
        message,
        "restart.backoff (1m) is longer than restart.backoff_max (30s)"
    );
    assert!(hint.is_some());
    // Against backoff's default (100ms), pointing at the key written.
    assert_eq!(
        restart("backoff_max: 50ms").2,
        "restart.backoff (100ms) is longer than restart.backoff_max (50ms)"
    );
    assert_eq!(restart("budget: 0").2, "`budget` must be at least 1");
    assert_eq!(
        restart("window: 0ms").2,
        "a duration limit must be longer than zero"
    );
    assert!(
        Dir::new()
            .load(&with("    restart: {backoff: 1s, backoff_max: 1s}\n"))
            .is_ok()
    );
}

#[test]
fn durations_must_be_longer_than_zero() {
    for key in ["call_time", "start_time", "stop_time"] {
        assert_eq!(
            at(&with(&format!("    {key}: 0s\n"))).2,
            "a duration limit must be longer than zero",
            "{key}"
        );
    }
}

#[test]
fn health_needs_a_valid_method() {
    assert_eq!(
        at(&with("    health: {input: x}\n")),
        (6, 13, "`health` has no `method`".into())
    );
    assert_eq!(
        at(&with("    health: {method: \"a\\tb\"}\n")),
        (6, 22, "\"a\\tb\" is not a valid method name".into())
    );
    let long = "m".repeat(256);
    assert_eq!(
        at(&with(&format!("    health: {{method: {long}}}\n"))).2,
        format!("{long:?} is not a valid method name")
    );
}

#[test]
fn a_missing_plugin_file_is_named_resolved() {
    let dir = Dir::new();
    let text = with("").replace("plugin: p.so", "plugin: nope.so");
    let e = dir.load(&text).unwrap_err();
    assert_eq!(e.diagnostics.len(), 1, "{e}");
    let d = &e.diagnostics[0];
    assert_eq!((d.pos.line, d.pos.col), (4, 13));
    let resolved = dir.path("nope.so");
    assert_eq!(
        d.message,
        format!("plugin file `{}` does not exist", resolved.display())
    );
    let text = with("").replace("plugin: p.so", "plugin: .");
    assert!(
        dir.load(&text).unwrap_err().diagnostics[0]
            .message
            .ends_with("is not a regular file")
    );
}

#[test]
fn paths_are_relative_to_the_file_and_may_climb() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path("etc")).unwrap();
    let name = dir.path("etc/host.yaml");
    let text = with("").replace("plugin: p.so", "plugin: ../p.so").replace(
        "profile: ok.yaml",
        &format!("profile: {}", dir.path("ok.yaml").display()),
    );
    let config = load_str(&name, &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.plugins[0].plugin, dir.path("etc/../p.so"));
    assert_eq!(config.plugins[0].profile, dir.path("ok.yaml"));
}

#[test]
fn a_broken_profile_reports_its_own_errors_in_its_own_file_once() {
    let dir = Dir::new();
    let text = format!(
        "{}  - id: b\n    plugin: p.so\n    profile: bad.yaml\n",
        with("").replace("ok.yaml", "bad.yaml")
    );
    let e = dir.load(&text).unwrap_err();
    let shown: Vec<_> = e
        .diagnostics
        .iter()
        .map(|d| {
            (
                e.sources.path(d.pos.file).to_path_buf(),
                d.pos.line,
                d.pos.col,
            )
        })
        .collect();
    let (host, bad) = (dir.path("host.yaml"), dir.path("bad.yaml"));
    // Both plugins say so; the profile's two errors are shown once, in the profile.
    assert_eq!(
        shown,
        [
            (host.clone(), 5, 14),
            (host, 8, 14),
            (bad.clone(), 3, 3),
            (bad, 4, 9)
        ]
    );
    assert_eq!(
        e.diagnostics[0].message,
        format!(
            "profile `{}` does not load: 2 errors, shown below",
            dir.path("bad.yaml").display()
        )
    );
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "{}:3:3: error: unknown key `memroy` in `limits`\n 3 |   memroy: 64M\n   |   ^\n",
            dir.path("bad.yaml").display()
        )),
        "{text}"
    );
}

#[test]
fn a_missing_profile_is_an_error_at_its_path() {
    let dir = Dir::new();
    let e = dir
        .load(&with("").replace("ok.yaml", "none.yaml"))
        .unwrap_err();
    let text = e.to_string();
    let none = dir.path("none.yaml");
    assert!(text.contains("host.yaml:5:14: error: profile `"), "{text}");
    assert!(
        text.contains(&format!("{}: error: cannot open profile", none.display())),
        "{text}"
    );
}

#[test]
fn files_are_capped_and_named_in_read_errors() {
    let dir = Dir::new();
    let e = load(&dir.path("absent.yaml")).unwrap_err();
    assert!(
        e.to_string().contains("cannot open host configuration"),
        "{e}"
    );
    let big = dir.path("big.yaml");
    std::fs::write(&big, "#".repeat(1 << 20) + "\n").unwrap();
    let e = load(&big).unwrap_err();
    assert!(
        e.to_string()
            .contains("host configuration is larger than 1024 KiB"),
        "{e}"
    );
    std::fs::write(dir.path("host.yaml"), with("")).unwrap();
    assert!(load(&dir.path("host.yaml")).is_ok());
}

#[test]
fn a_host_configuration_is_told_apart_from_a_profile() {
    let root = |text: &str| crate::profile::Document::parse(Path::new("x.yaml"), text).root;
    assert!(read::is_host_config(
        &root("version: 1\nplugins: []\n").unwrap()
    ));
    assert!(!read::is_host_config(
        &root("version: 1\nplugin: {}\n").unwrap()
    ));
    assert!(!read::is_host_config(&root("- plugins\n").unwrap()));
}

#[test]
fn shm_reads_its_options_and_refuses_a_profile_without_futex() {
    let dir = Dir::new();
    let text = "version: 1\nplugins:\n  - id: a\n    plugin: p.so\n    profile: futex.yaml\n    shm: {spin_us: 20, arena: 64K, scrub_inputs: true}\n";
    let config = dir.load(text).unwrap_or_else(|e| panic!("{e}"));
    let shm = config.plugins[0].shm.expect("shm");
    assert_eq!(shm.spin, Duration::from_micros(20));
    assert_eq!(shm.arena, 64 << 10);
    assert!(shm.scrub_inputs);
    let text = text.replace("{spin_us: 20, arena: 64K, scrub_inputs: true}", "{}");
    let shm = dir.load(&text).unwrap().plugins[0].shm;
    assert_eq!(shm, Some(ShmOptions::default()));

    let (line, col, message, hint) = error(&with("    shm: {}\n"));
    assert_eq!((line, col), (6, 10), "{message}");
    assert!(message.contains("`shm` needs what profile"), "{message}");
    assert!(hint.unwrap().contains("futex"));
    let with_futex =
        |shm: &str| with(&format!("    shm: {shm}\n")).replace("ok.yaml", "futex.yaml");
    let (line, col, message) = at(&with_futex("{arena: 1K}"));
    assert_eq!((line, col), (6, 18));
    assert!(message.contains("out of range"), "{message}");
    let (line, col, _) = at(&with_futex("{spin_us: 2000000}"));
    assert_eq!((line, col), (6, 20));
    let (_, _, message) = at(&with_futex("{spin: 5}"));
    assert!(message.contains("spin"), "{message}");
}

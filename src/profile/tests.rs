//! Profile reading: every error class with its message, line and column; merging; the
//! shipped profiles; hostile documents.

use std::path::Path;
use std::time::{Duration, Instant};

use super::diag::{Listed, errors_of, only};
use super::*;

/// Loads `text` as `p.yaml` and returns its errors as (line, col, message, hint).
fn errors(text: &str) -> Vec<Listed> {
    errors_of(load_str(Path::new("p.yaml"), text), text)
}

/// The single error of `text`.
fn error(text: &str) -> Listed {
    only(errors(text))
}

fn ok(text: &str) -> Profile {
    load_str(Path::new("p.yaml"), text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn minimal_profile_gets_safe_defaults() {
    let p = ok("version: 1\n");
    assert!(p.namespaces.user && p.namespaces.net && p.namespaces.pid);
    assert_eq!(p.network, Network::None);
    assert_eq!(p.seccomp.default_action, Action::KillProcess);
    assert!(p.seccomp.load.allow.is_empty());
    assert_eq!(p.landlock.compat, Level::Required);
    assert_eq!(p.enforcement.limits, Level::Required);
    assert_eq!(p.limits.max_message, 16 << 20);
    assert_eq!(p.filesystem.devices.len(), 5);
}

#[test]
fn unknown_key_with_suggestion() {
    let (line, col, msg, hint) = error("version: 1\nlimits:\n  memroy: 64M\n");
    assert_eq!((line, col), (3, 3));
    assert_eq!(msg, "unknown key `memroy` in `limits`");
    assert_eq!(hint.as_deref(), Some("did you mean `memory`?"));
}

#[test]
fn key_that_lives_in_another_section_says_where() {
    let (line, col, msg, hint) = error("version: 1\nenforcement:\n  landlock: required\n");
    assert_eq!((line, col), (3, 3));
    assert_eq!(msg, "unknown key `landlock` in `enforcement`");
    assert_eq!(
        hint.as_deref(),
        Some("Landlock's level is `landlock.compat`, beside its rules")
    );
}

#[test]
fn duplicate_key() {
    let (line, col, msg, _) = error("version: 1\nhostname: a\nhostname: b\n");
    assert_eq!((line, col), (3, 1));
    assert!(msg.contains("duplicate mapping key `hostname`"), "{msg}");
}

#[test]
fn wrong_types() {
    let all = errors(
        "version: 1\nnamespaces:\n  net: yes please\nlimits:\n  pids: many\nfilesystem: [a]\n",
    );
    assert_eq!(
        all.iter()
            .map(|e| (e.0, e.1, e.2.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (3, 8, "expected true or false, found a string"),
            (5, 9, "expected an integer, found a string"),
            (6, 13, "`filesystem` must be a mapping, not a list"),
        ]
    );
}

#[test]
fn bad_size() {
    let (line, col, msg, hint) = error("version: 1\nlimits:\n  memory: 64Q\n");
    assert_eq!((line, col), (3, 11));
    assert_eq!(msg, "`64Q` has an unknown size unit `Q`");
    assert!(hint.unwrap().contains("64M"));
}

#[test]
fn bad_durations() {
    let all = errors("version: 1\nlimits:\n  wall_time: 10\n  call_time: 2 days\n  cpu_time: 0s\n");
    let msgs: Vec<_> = all.iter().map(|e| (e.0, e.1, e.2.as_str())).collect();
    assert_eq!(
        msgs,
        vec![
            (3, 14, "`10` has no unit; write for example `10s`"),
            (
                4,
                14,
                "`2 days` has an unknown duration unit ` days` (use ms, s, m or h)"
            ),
            (5, 13, "a duration limit must be longer than zero"),
        ]
    );
}

#[test]
fn relative_and_dotted_paths() {
    let all = errors("version: 1\nfilesystem:\n  read_only: [usr/lib, /usr/../etc]\n");
    assert_eq!((all[0].0, all[0].1), (3, 15));
    assert_eq!(all[0].2, "path `usr/lib` is relative");
    assert_eq!((all[1].0, all[1].1), (3, 24));
    assert!(all[1].2.contains("`.` or `..`"));
}

#[test]
fn unknown_syscall_with_suggestion_from_real_tables() {
    let text = "version: 1\nseccomp:\n  load:\n    allow:\n      - syscalls: [read, opneat]\n";
    let (line, col, msg, hint) = error(text);
    assert_eq!((line, col), (5, 26));
    assert_eq!(
        msg,
        "unknown syscall `opneat` (not a syscall on x86_64 or aarch64)"
    );
    assert_eq!(hint.as_deref(), Some("did you mean `openat`?"));
}

#[test]
fn syscall_of_one_arch_only_is_accepted() {
    // `open` exists on x86_64 but not on aarch64: legitimate in a portable profile.
    let p = ok("version: 1\nseccomp:\n  load:\n    allow:\n      - syscalls: [open]\n");
    assert_eq!(p.seccomp.load.allow[0].syscalls, vec!["open"]);
}

#[test]
fn unknown_group_with_suggestion() {
    let text = "version: 1\nseccomp:\n  load:\n    allow:\n      - syscalls: [\"@basic_io\"]\n";
    let (_, _, msg, hint) = error(text);
    assert_eq!(msg, "unknown syscall group `@basic_io`");
    assert_eq!(hint.as_deref(), Some("did you mean `@basic-io`?"));
}

#[test]
fn path_both_read_only_and_read_write() {
    let text = "version: 1\nfilesystem:\n  read_only: [/opt]\n  read_write: [/opt]\n";
    let (line, col, msg, _) = error(text);
    assert_eq!((line, col), (4, 16));
    assert_eq!(msg, "`/opt` is listed both in read_only and in read_write");
}

#[test]
fn call_time_above_wall_time() {
    let (line, col, msg, _) = error("version: 1\nlimits:\n  wall_time: 1s\n  call_time: 2s\n");
    assert_eq!((line, col), (4, 14));
    assert_eq!(
        msg,
        "call_time (2s) is longer than wall_time (1s), so it could never trigger"
    );
}

#[test]
fn serve_phase_cannot_widen_load() {
    let text = "version: 1\nseccomp:\n  load:\n    allow:\n      - syscalls: [read]\n  serve:\n    allow:\n      - syscalls: [read, ptrace]\n";
    let (line, col, msg, hint) = error(text);
    assert_eq!((line, col), (8, 26));
    assert_eq!(msg, "serve allows `ptrace`, but load does not");
    assert!(hint.unwrap().contains("only tighten"));
}

#[test]
fn network_none_needs_net_namespace() {
    let (_, _, msg, _) = error("version: 1\nnamespaces: { net: false }\n");
    assert!(msg.contains("needs a network namespace"), "{msg}");
    ok("version: 1\nnamespaces: { net: false }\nnetwork: loopback\n");
}

#[test]
fn argument_conditions() {
    let p = ok(
        "version: 1\nseccomp:\n  load:\n    allow:\n      - syscalls: [ioctl]\n        args: [{ index: 1, op: eq, value: 0x5401 }]\n        comment: isatty\n",
    );
    let rule = &p.seccomp.load.allow[0];
    assert_eq!(
        rule.args,
        vec![ArgCondition {
            index: 1,
            op: CmpOp::Eq,
            value: 0x5401,
            mask: None
        }]
    );
    assert_eq!(rule.comment.as_deref(), Some("isatty"));
    let all = errors(
        "version: 1\nseccomp:\n  load:\n    allow:\n      - syscalls: [ioctl]\n        args: [{ index: 6, op: eqq, value: 1 }, { index: 0, op: masked_eq, value: 1 }]\n",
    );
    let msgs: Vec<&str> = all.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(
        msgs,
        vec![
            "6 is out of range (0 to 5)",
            "`eqq` is not one of eq, ne, lt, le, gt, ge, masked_eq",
            "`mask` goes with `op: masked_eq`, and only with it",
        ]
    );
}

#[test]
fn version_is_required_and_checked() {
    assert_eq!(error("hostname: x\n").2, "the profile has no `version`");
    assert_eq!(error("version: 2\n").2, "unsupported profile version");
    assert_eq!(
        error("").2,
        "a profile must be a mapping, found an empty document"
    );
}

#[test]
fn syntax_error_has_position() {
    let (line, col, msg, _) = error("version: 1\nlimits: [\n");
    assert!(msg.starts_with("invalid YAML"), "{msg}");
    assert!(line >= 2, "line {line} col {col}");
}

#[test]
fn every_error_in_a_file_is_reported_in_order() {
    let text = "version: 1\nlimits:\n  memory: 64Q\n  pids: 0\nfilesystem:\n  read_only: [usr]\nnetwrok: none\n";
    let lines: Vec<u32> = errors(text).iter().map(|e| e.0).collect();
    assert_eq!(lines, vec![3, 4, 6, 7]);
}

#[test]
fn rendered_errors_name_file_line_col_and_show_the_line() {
    let err = load_str(
        Path::new("ops/plugin.yaml"),
        "version: 1\nlimits:\n  memory: 64Q\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("ops/plugin.yaml:3:11: error: `64Q` has an unknown size unit `Q`\n 3 |   memory: 64Q\n   |           ^\n"),
        "{err}"
    );
}

#[test]
fn yaml_null_means_dev_null_in_devices() {
    let p = ok("version: 1\nfilesystem:\n  devices: [null, urandom]\n");
    assert_eq!(p.filesystem.devices, vec![Device::Null, Device::Urandom]);
}

mod extends {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn merges_maps_appends_lists_and_overrides_scalars() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("base")).unwrap();
        write(
            dir.path(),
            "base/base.yaml",
            "version: 1\nhostname: base\nfilesystem:\n  read_only: [/usr]\nlimits:\n  memory: 64M\n  pids: 8\n",
        );
        let top = write(
            dir.path(),
            "top.yaml",
            "version: 1\nextends: base/base.yaml\nfilesystem:\n  read_only: [/opt, /usr]\nlimits:\n  memory: 128M\n",
        );
        let p = load(&top).unwrap();
        assert_eq!(p.hostname, "base");
        assert_eq!(
            p.filesystem.read_only,
            vec![Path::new("/usr"), Path::new("/opt")]
        );
        assert_eq!(p.limits.memory, Some(128 << 20));
        assert_eq!(p.limits.pids, Some(8));
    }

    #[test]
    fn errors_point_into_the_base_file() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "base.yaml",
            "version: 1\nlimits:\n  memory: 64Q\n",
        );
        let top = write(dir.path(), "top.yaml", "version: 1\nextends: base.yaml\n");
        let err = load(&top).unwrap_err().to_string();
        assert!(err.contains("base.yaml:3:11: error: `64Q`"), "{err}");
    }

    #[test]
    fn cycles_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", "version: 1\nextends: b.yaml\n");
        write(dir.path(), "b.yaml", "version: 1\nextends: a.yaml\n");
        let err = load(&dir.path().join("a.yaml")).unwrap_err();
        assert_eq!(err.diagnostics.len(), 1);
        assert!(
            err.diagnostics[0]
                .message
                .starts_with("`extends` makes a cycle")
        );
        assert!(err.to_string().contains("b.yaml:2:10"), "{err}");
    }

    #[test]
    fn missing_base_is_reported_at_the_extends_line() {
        let dir = tempfile::tempdir().unwrap();
        let top = write(
            dir.path(),
            "top.yaml",
            "version: 1\nextends: nowhere.yaml\n",
        );
        let err = load(&top).unwrap_err().to_string();
        assert!(
            err.contains("top.yaml:2:10: error: cannot open profile"),
            "{err}"
        );
    }
}

mod shipped {
    use super::*;

    fn shipped() -> Vec<std::path::PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let mut all: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn every_shipped_profile_is_valid() {
        let all = shipped();
        assert!(all.len() >= 4, "{all:?}");
        for path in all {
            load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn default_profile_is_a_tight_jail() {
        let p = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/default.yaml")).unwrap();
        assert_eq!(p.network, Network::None);
        assert_eq!(p.seccomp.default_action, Action::KillProcess);
        let serve = resolve::phase_names(&p.seccomp.serve);
        for forbidden in ["execve", "ptrace", "mount", "socket", "bpf", "unshare"] {
            assert!(!serve.contains(forbidden), "serve allows {forbidden}");
        }
        assert!(p.filesystem.read_write.is_empty());
    }

    #[test]
    fn audit_profile_logs_instead_of_killing() {
        let p = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/audit.yaml")).unwrap();
        assert_eq!(p.seccomp.default_action, Action::Log);
        assert_eq!(p.enforcement.seccomp, Level::BestEffort);
    }
}

mod hostile {
    use super::*;

    /// Generous bound that turns a hang into a failure; not a speed test.
    const HANG: Duration = Duration::from_secs(20);

    fn rejected_quickly(text: &str) -> String {
        let start = Instant::now();
        let err = load_str(Path::new("h.yaml"), text).unwrap_err();
        assert!(start.elapsed() < HANG);
        err.diagnostics[0].message.clone()
    }

    #[test]
    fn alias_bomb() {
        let mut text = String::from("version: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text += &format!("a{i}: &a{i} [{refs}]\n");
        }
        let msg = rejected_quickly(&text);
        assert!(msg.contains("alias bomb"), "{msg}");
    }

    #[test]
    fn deep_nesting() {
        let text = format!(
            "version: 1\nx: {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(rejected_quickly(&text).starts_with("invalid YAML"));
        let mut block = String::from("version: 1\n");
        for i in 0..500 {
            block += &format!("{}k{i}:\n", " ".repeat(i));
        }
        assert!(rejected_quickly(&block).starts_with("invalid YAML"));
    }

    #[test]
    fn five_megabyte_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        let mut text = String::from("version: 1\n");
        while text.len() < 5 << 20 {
            text += "# padding padding padding padding padding padding padding padding\n";
        }
        std::fs::write(&path, text).unwrap();
        let start = Instant::now();
        let err = load(&path).unwrap_err();
        assert!(start.elapsed() < HANG);
        assert!(
            err.diagnostics[0]
                .message
                .starts_with("profile is larger than 1024 KiB")
        );
    }

    #[test]
    fn binary_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin.yaml");
        std::fs::write(&path, [0xff, 0xfe, 0x00, 0x01]).unwrap();
        assert!(
            load(&path).unwrap_err().diagnostics[0]
                .message
                .contains("not UTF-8")
        );
    }
}

use std::path::Path;

use super::*;
use crate::profile::Document;

/// The lint's findings for `text`: (line, column, message).
fn lint_of(text: &str) -> Vec<(u32, u32, String)> {
    lint_as(text, &[])
}

fn lint_as(text: &str, users: &[JailUser]) -> Vec<(u32, u32, String)> {
    let (_, w) = Document::parse(Path::new("p.yaml"), text)
        .into_linted(users)
        .unwrap_or_else(|e| panic!("invalid profile:\n{e}"));
    w.diagnostics
        .into_iter()
        .map(|d| (d.pos.line, d.pos.col, d.message))
        .collect()
}

/// The messages only, for tests that look for one finding among several.
fn messages(text: &str) -> Vec<String> {
    lint_of(text).into_iter().map(|(_, _, m)| m).collect()
}

const BASE: &str = "version: 1\nnamespaces: { mount: true }\n";

#[test]
fn shipped_profiles_have_no_findings() {
    for name in ["default", "strict", "ci-tests", "audit"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("profiles")
            .join(format!("{name}.yaml"));
        let (_, w) = Document::read(&path, "profile")
            .into_linted(&[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(w.diagnostics.is_empty(), "{name}:\n{w}");
    }
}

#[test]
fn read_write_bind_without_landlock_write() {
    let text =
        format!("{BASE}filesystem:\n  read_write: [/srv/out]\nlandlock:\n  read: [/srv/out]\n");
    let found = lint_of(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].0, found[0].1), (4, 16));
    assert!(
        found[0]
            .2
            .contains("`/srv/out` is bound read-write, but Landlock grants no write")
    );
    // The grant on the bind itself (or a bind above it) settles it.
    let fixed = format!("{text}  write: [/srv/out]\n");
    assert_eq!(lint_of(&fixed), vec![]);
}

#[test]
fn read_only_bind_without_landlock_read_or_execute() {
    let text =
        format!("{BASE}filesystem:\n  read_only: [/usr, /etc/ssl]\nlandlock:\n  execute: [/usr]\n");
    let found = lint_of(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].0, found[0].1), (4, 21));
    assert!(
        found[0]
            .2
            .contains("`/etc/ssl` is bound read-only, but Landlock grants no read")
    );
}

#[test]
fn write_grant_on_read_only_bind_or_nothing_writable() {
    let text = format!(
        "{BASE}filesystem:\n  read_only: [/usr]\n  tmpfs: [{{ path: /tmp, size: 1M }}]\n\
         landlock:\n  read: [/usr, /tmp]\n  write: [/tmp, /usr/share, /var/log, /nowhere]\n"
    );
    let m = messages(&text);
    assert_eq!(m.len(), 3, "{m:#?}");
    assert!(
        m[0].contains("`/usr/share`, but it is on the read-only bind of `/usr`"),
        "{m:#?}"
    );
    assert!(
        m[1].contains("`/var/log`, but nothing writable is mounted there"),
        "{m:#?}"
    );
    assert!(
        m[2].contains("`/nowhere`, but the jail has no such path"),
        "{m:#?}"
    );
}

#[test]
fn read_grant_on_a_path_the_jail_lacks() {
    let text = format!(
        "{BASE}filesystem:\n  read_only: [/usr]\nlandlock:\n  read: [/usr, /opt/tool, /etc, /proc]\n"
    );
    let found = lint_of(&text);
    // /etc is a template directory and /proc the jail's own: they exist.
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].0, found[0].1), (6, 16));
    assert!(
        found[0]
            .2
            .contains("read on `/opt/tool`, but no mount puts anything there")
    );
}

#[test]
fn bind_under_a_wider_grant() {
    let text = format!(
        "{BASE}filesystem:\n  read_write: [/tmp/out]\n  tmpfs: [{{ path: /tmp, size: 1M }}]\n\
         landlock:\n  read: [/tmp]\n  write: [/tmp]\n  execute: [/tmp]\n"
    );
    let m = messages(&text);
    assert_eq!(m.len(), 1, "{m:#?}");
    assert!(
        m[0].contains(
            "`/tmp/out` lies under a wider Landlock grant and gets read from `/tmp` (line 7), \
             write from `/tmp` (line 8), execute from `/tmp` (line 9)"
        ),
        "{m:#?}"
    );
    // A grant on a directory that holds only binds is about them: no finding.
    let binds_only = format!(
        "{BASE}filesystem:\n  read_write: [/srv/a, /srv/b]\nlandlock:\n  read: [/srv]\n  write: [/srv]\n"
    );
    assert_eq!(lint_of(&binds_only), vec![]);
    // The root covers /dev and /proc too: wider.
    let root = format!("{BASE}filesystem:\n  read_only: [/opt/x]\nlandlock:\n  read: [/]\n");
    let m = messages(&root);
    assert_eq!(m.len(), 1, "{m:#?}");
    assert!(m[0].contains("gets read from `/` (line 6)"), "{m:#?}");
    // Stated for the bind itself, the same rights are no surprise.
    let stated = format!("{text}  # stated\n").replace(
        "  read: [/tmp]\n  write: [/tmp]\n  execute: [/tmp]",
        "  read: [/tmp, /tmp/out]\n  write: [/tmp, /tmp/out]\n  execute: [/tmp, /tmp/out]",
    );
    assert_eq!(lint_of(&stated), vec![]);
}

#[test]
fn read_write_bind_the_jail_user_cannot_write() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    let meta = std::fs::metadata(&out).unwrap();
    let text = format!(
        "{BASE}filesystem:\n  read_write: [{p}]\nlandlock:\n  read: [{p}]\n  write: [{p}]\n",
        p = out.display()
    );
    let owner = JailUser {
        uid: meta.uid(),
        gid: meta.gid(),
        when: "as its owner".into(),
    };
    let other = JailUser {
        uid: meta.uid() + 1,
        gid: meta.gid() + 1,
        when: "as someone else".into(),
    };
    assert_eq!(lint_as(&text, std::slice::from_ref(&owner)), vec![]);
    let found = lint_as(&text, &[owner, other.clone()]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].0, found[0].1), (4, 16));
    assert!(
        found[0].2.contains(&format!(
            "is not writable by uid {} gid {}, the user the jail runs as as someone else \
             (it is mode 0755",
            other.uid, other.gid
        )),
        "{found:#?}"
    );
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(lint_as(&text, &[other]), vec![]);
}

#[test]
fn serve_rule_held_to_load_conditions() {
    let text = format!(
        "{BASE}seccomp:\n  load:\n    allow:\n      - syscalls: [read, ioctl]\n        args: [{{ index: 1, op: eq, value: 0x5401 }}]\n\
         \x20     - syscalls: [read]\n  serve:\n    allow:\n      - syscalls: [read, ioctl]\n"
    );
    let found = lint_of(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].0, found[0].1), (11, 26));
    assert!(
        found[0].2.contains("serve allows `ioctl` with any arguments, but load allows `ioctl` only when arg1 eq 0x5401"),
        "{found:#?}"
    );
}

#[test]
fn tcp_ports_without_a_network() {
    let text = format!("{BASE}landlock:\n  tcp_bind: [8080]\n");
    let found = lint_of(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]
            .2
            .contains("`network: none` gives the jail no interface")
    );
    assert_eq!(lint_of(&format!("{text}network: loopback\n")), vec![]);
}

#[test]
fn findings_in_a_base_point_into_the_base() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("base.yaml"),
        "version: 1\nfilesystem:\n  read_only: [/usr]\n",
    )
    .unwrap();
    let top = dir.path().join("top.yaml");
    std::fs::write(
        &top,
        "version: 1\nextends: base.yaml\nlandlock:\n  execute: [/opt/x]\n",
    )
    .unwrap();
    let (_, w) = Document::read(&top, "profile").into_linted(&[]).unwrap();
    let shown = w.to_string();
    assert!(
        shown.contains("base.yaml:3:15: warning: `/usr` is bound read-only"),
        "{shown}"
    );
    assert!(
        shown.contains("  = fix: add `/usr` to landlock.read"),
        "{shown}"
    );
    assert!(
        shown.contains("top.yaml:4:13: warning: Landlock grants execute on `/opt/x`"),
        "{shown}"
    );
}

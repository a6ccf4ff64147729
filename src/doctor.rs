//! `plugjail doctor [--profile P] [--json]`: what this kernel and this user can enforce,
//! and with a profile, whether it would run here and what it would lose.
//!
//! Exit status: 0 when the machine was probed (and the profile, if given, would run,
//! perhaps losing `best_effort` protections); 1 when the profile would be refused;
//! 2 when the profile is invalid.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use crate::probe::{self, Assessment, Capabilities, CgroupMode, Check, Enforce, Outcome};

/// The profile would be refused on this machine.
pub const EXIT_REFUSED: u8 = 1;
/// The profile is invalid (the same status as `plugjail check`).
pub const EXIT_INVALID: u8 = 2;

#[derive(Serialize)]
struct Report<'a> {
    version: &'static str,
    #[serde(flatten)]
    capabilities: &'a Capabilities,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<ProfileReport<'a>>,
}

#[derive(Serialize)]
struct ProfileReport<'a> {
    path: &'a Path,
    #[serde(flatten)]
    assessment: &'a Assessment,
}

pub fn run(profile: Option<&Path>, json: bool) -> ExitCode {
    let loaded = match profile.map(crate::profile::load).transpose() {
        Ok(p) => p,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let caps = Capabilities::probe();
    let assessment = loaded.as_ref().map(|p| probe::assess(p, &caps));
    let out = if json {
        let report = Report {
            version: env!("CARGO_PKG_VERSION"),
            capabilities: &caps,
            profile: profile
                .zip(assessment.as_ref())
                .map(|(path, assessment)| ProfileReport { path, assessment }),
        };
        let mut text = serde_json::to_string_pretty(&report).expect("the report serializes");
        text.push('\n');
        text
    } else {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let mut t = Text {
            out: String::new(),
            color,
        };
        t.capabilities(&caps);
        if let (Some(path), Some(a)) = (profile, &assessment) {
            t.assessment(path, a);
        }
        t.out
    };
    // A closed stdout (doctor | head) is not worth a panic.
    let _ = std::io::stdout().write_all(out.as_bytes());
    match assessment.map(|a| a.outcome) {
        Some(Outcome::Refused) => ExitCode::from(EXIT_REFUSED),
        _ => ExitCode::SUCCESS,
    }
}

/// Width of the fact-name column, indentation included.
const KEY: usize = 30;

#[derive(Clone, Copy)]
enum Mark {
    Yes,
    No,
    Degraded,
    /// A plain fact, neither good nor bad.
    Info,
}

impl From<bool> for Mark {
    fn from(ok: bool) -> Mark {
        if ok { Mark::Yes } else { Mark::No }
    }
}

impl From<Enforce> for Mark {
    fn from(e: Enforce) -> Mark {
        match e {
            Enforce::Yes => Mark::Yes,
            Enforce::Degraded => Mark::Degraded,
            Enforce::No => Mark::No,
        }
    }
}

struct Text {
    out: String,
    color: bool,
}

impl Text {
    fn section(&mut self, title: &str) {
        let _ = writeln!(self.out, "{title}");
    }

    fn fact(&mut self, key: &str, mark: impl Into<Mark>, value: impl AsRef<str>) {
        let (symbol, code) = match mark.into() {
            Mark::Yes => ("✓", "32"),
            Mark::No => ("✗", "31"),
            Mark::Degraded => ("~", "33"),
            Mark::Info => (" ", ""),
        };
        let symbol = if self.color && !code.is_empty() {
            format!("\x1b[{code}m{symbol}\x1b[0m")
        } else {
            symbol.to_owned()
        };
        let key = format!("  {key}");
        let _ = writeln!(self.out, "{key:<KEY$} {symbol} {}", value.as_ref());
    }

    fn check(&mut self, key: &str, c: &Check, ok_text: &str) {
        match &c.error {
            Some(f) if !c.ok => self.fact(key, false, &f.message),
            _ => self.fact(key, c.ok, ok_text),
        }
    }

    fn capabilities(&mut self, caps: &Capabilities) {
        let p = &caps.privileges;
        let _ = writeln!(
            self.out,
            "plugjail {} doctor: what this kernel and this user can enforce\n",
            env!("CARGO_PKG_VERSION")
        );
        self.section("privileges");
        let who = if p.root { " (root)" } else { "" };
        self.fact(
            "user",
            Mark::Info,
            format!("uid {} euid {} gid {}{who}", p.uid, p.euid, p.gid),
        );
        let admin = if p.cap_sys_admin { "yes" } else { "no" };
        self.fact("CAP_SYS_ADMIN", Mark::Info, admin);
        self.fact("arch", Mark::Info, caps.arch);

        let ns = &caps.user_namespaces;
        self.section("user namespaces");
        let works = if ns.works { "works" } else { "does not work" };
        self.fact("rootless jail", ns.works, works);
        self.check("user namespace", &ns.user, "unshare(CLONE_NEWUSER) works");
        self.check("uid/gid maps", &ns.maps, "written (own ids mapped to 0)");
        self.check("mount namespace", &ns.mount, "works, tmpfs mounts inside");
        for (name, c) in [
            ("pid namespace", &ns.pid),
            ("network namespace", &ns.net),
            ("ipc namespace", &ns.ipc),
            ("uts namespace", &ns.uts),
            ("cgroup namespace", &ns.cgroup),
        ] {
            self.check(name, c, "works");
        }
        if let Some(hint) = ns.hint {
            self.fact("hint", Mark::Info, hint);
        }
        if let Some(n) = ns.max_user_namespaces {
            self.fact("max_user_namespaces", n > 0, n.to_string());
        }
        if let Some(on) = ns.apparmor_restrict_unprivileged_userns {
            let v = if on { "1 (restricted)" } else { "0" };
            self.fact("apparmor_restrict_unpriv...", !on, v);
        }
        if let Some(on) = ns.unprivileged_userns_clone {
            self.fact("unprivileged_userns_clone", on, if on { "1" } else { "0" });
        }

        let l = &caps.landlock;
        self.section("landlock");
        match &l.error {
            Some(f) => self.fact("ABI", false, format!("unavailable: {}", f.message)),
            None => self.fact("ABI", l.abi > 0, l.abi.to_string()),
        }
        for (abi, name, what) in probe::LANDLOCK_FEATURES {
            self.fact(name, l.abi >= abi, format!("{what} (ABI {abi})"));
        }

        let s = &caps.seccomp;
        self.section("seccomp");
        match &s.error {
            Some(f) => self.fact("filter", false, format!("unavailable: {}", f.message)),
            None => self.fact(
                "filter",
                s.available,
                format!("available (this process: {})", s.current_mode),
            ),
        }
        let actions = if s.actions.is_empty() {
            "none known".to_owned()
        } else {
            s.actions.join(" ")
        };
        self.fact("actions", !s.actions.is_empty(), actions);
        let n = &caps.no_new_privs;
        let set = if n.set { "set already" } else { "not set yet" };
        let nnp = if n.supported {
            format!("supported ({set})")
        } else {
            "unsupported".into()
        };
        self.fact("no_new_privs", n.supported, nnp);

        self.cgroups(&caps.cgroups);
    }

    fn cgroups(&mut self, c: &probe::Cgroups) {
        self.section("cgroups");
        self.fact("mode", c.mode != CgroupMode::None, c.mode.name());
        if let Some(f) = &c.error {
            self.fact("error", false, &f.message);
        }
        for h in &c.v1 {
            let dir = h.dir.as_ref().or(h.mount.as_ref());
            let at = dir.map(|d| d.display().to_string()).unwrap_or_default();
            let root = if h.own_is_root {
                " (own cgroup is the hierarchy root)"
            } else {
                ""
            };
            let value = match (&h.error, h.writable) {
                (_, true) => format!("child cgroups can be created in {at}{root}"),
                (Some(f), false) => f.message.clone(),
                (None, false) => format!("not writable: {at}"),
            };
            self.fact(h.controller, h.writable, value);
        }
        if let Some(v2) = &c.v2 {
            self.v2(c.mode, v2);
        }
        let swap = match (c.swap_accounting, c.host_swap) {
            (Some(true), _) => "on",
            (Some(false), _) => "off",
            (None, _) => "unknown",
        };
        let host = if c.host_swap {
            "swap active on the host"
        } else {
            "no swap active on the host"
        };
        self.fact("swap accounting", Mark::Info, format!("{swap} ({host})"));
        let names: Vec<&str> = c.writable.iter().map(|w| w.name()).collect();
        let usable = if names.is_empty() {
            "none: limits fall back to rlimits".to_owned()
        } else {
            names.join(" ")
        };
        self.fact("usable for jail limits", !names.is_empty(), usable);
        self.fact(
            "pause (plugin host)",
            Mark::Info,
            crate::cgroup::pause_method(c),
        );
        if c.mode == CgroupMode::V2 && names.is_empty() {
            self.fact(
                "delegation",
                Mark::Info,
                "plugjail's cgroup is not delegated to this user: start the host under \
                 `systemd-run --user --scope -p Delegate=yes` to get limits and the freezer",
            );
        }
    }

    fn v2(&mut self, mode: CgroupMode, v2: &probe::cgroup::V2Hierarchy) {
        let list = |l: &[String]| {
            if l.is_empty() {
                "none".to_owned()
            } else {
                l.join(" ")
            }
        };
        let mount = v2.mount.display();
        if mode != CgroupMode::V2 {
            // Hybrid: the unified hierarchy carries no limits; one line is enough.
            let controllers = v2.own.as_ref().map_or(&[][..], |o| &o.controllers[..]);
            let value = format!("{mount} (controllers: {})", list(controllers));
            self.fact("unified (not used)", Mark::Info, value);
            return;
        }
        self.fact("unified", Mark::Info, mount.to_string());
        if let Some(f) = &v2.error {
            self.fact("own cgroup", false, &f.message);
        }
        for (name, cg) in [("own cgroup", &v2.own), ("parent cgroup", &v2.parent)] {
            let Some(cg) = cg else { continue };
            let owner = cg
                .owner_uid
                .map(|u| format!(", owner uid {u}"))
                .unwrap_or_default();
            let root = if cg.is_root { " (root)" } else { "" };
            self.fact(name, Mark::Info, format!("{}{root}{owner}", cg.path));
            let yes = |b| if b { "yes" } else { "no" };
            self.fact(
                "  delegated",
                cg.delegated,
                format!(
                    "dir writable {}, cgroup.procs {}, cgroup.subtree_control {}",
                    yes(cg.writable),
                    yes(cg.procs_writable),
                    yes(cg.subtree_control_writable)
                ),
            );
            self.fact("  controllers", Mark::Info, list(&cg.controllers));
            self.fact("  subtree_control", Mark::Info, list(&cg.subtree_control));
        }
        let usable = &v2.usable_controllers;
        self.fact("controllers for a jail", !usable.is_empty(), list(usable));
    }

    fn assessment(&mut self, path: &Path, a: &Assessment) {
        let _ = writeln!(self.out, "\nprofile {}", path.display());
        for m in &a.mechanisms {
            self.section(&format!("{} ({})", m.name, m.level.name()));
            if m.items.is_empty() {
                self.fact("nothing requested", Mark::Info, "");
            }
            for i in &m.items {
                self.fact(&i.what, i.enforce, &i.how);
            }
        }
        let _ = writeln!(self.out, "\n{}", a.summary);
    }
}

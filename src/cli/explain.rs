//! `plugjail explain`: the effective policy in words a reviewer can check, or as JSON.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::profile::resolve::{phase_names, resolve};
use crate::profile::units::{format_duration, format_size};
use crate::profile::{Action, Level, Network, Phase, Profile, Scope};
use crate::sysnames::{self, Arch};

/// The version of `explain --json`'s own format (not the profile's `version`); raised when
/// a field changes meaning.
pub const EXPLAIN_FORMAT_VERSION: u32 = 1;

/// The JSON form: `version` is [`EXPLAIN_FORMAT_VERSION`]; `profile` is the effective profile in the profile format itself (it
/// passes `plugjail check` and loads back to the same policy); `seccomp` lists the
/// syscalls each phase resolves to per architecture; `best_effort` what may be dropped.
pub fn explain_json(profile: &Profile) -> Value {
    let mut seccomp = serde_json::Map::new();
    for (name, phase) in [
        ("load", &profile.seccomp.load),
        ("serve", &profile.seccomp.serve),
    ] {
        let names = phase_names(phase);
        let mut per_arch = serde_json::Map::new();
        for arch in Arch::ALL {
            let r = resolve(arch, &names);
            let numbers: Vec<Value> = r
                .numbers
                .iter()
                .map(|(n, nr)| json!({ "name": n, "nr": nr }))
                .collect();
            per_arch.insert(
                arch.name().into(),
                json!({ "allowed": numbers, "absent": r.absent }),
            );
        }
        seccomp.insert(name.into(), Value::Object(per_arch));
    }
    json!({
        "version": EXPLAIN_FORMAT_VERSION,
        "profile": profile,
        "seccomp": seccomp,
        "best_effort": best_effort(profile)
            .into_iter()
            .map(|(m, d)| json!({ "mechanism": m, "may_drop": d }))
            .collect::<Vec<_>>(),
    })
}

/// What each `best_effort` setting lets plugjail drop on a kernel that cannot enforce it.
fn best_effort(p: &Profile) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if p.enforcement.namespaces == Level::BestEffort {
        out.push((
            "namespaces",
            "a namespace the kernel refuses to create is skipped, and the verdict says which",
        ));
    }
    if p.landlock.compat == Level::BestEffort {
        out.push((
            "landlock",
            "rules this kernel's Landlock ABI lacks (TCP ports need ABI 4, scopes ABI 6), or \
             Landlock entirely where the kernel has none",
        ));
    }
    if p.enforcement.seccomp == Level::BestEffort {
        out.push((
            "seccomp",
            "the syscall filter, where the kernel lacks seccomp or the default action",
        ));
    }
    if p.enforcement.limits == Level::BestEffort {
        out.push((
            "limits",
            "cgroup limits (memory, cpu, io, pids) where no cgroup is writable; memory then \
             falls back to an address-space rlimit, and rlimits always apply",
        ));
    }
    out
}

/// The human form.
pub fn explain_text(path: &Path, p: &Profile) -> String {
    let mut o = String::new();
    let _ = write_text(&mut o, path, p);
    o
}

fn write_text(o: &mut String, path: &Path, p: &Profile) -> std::fmt::Result {
    writeln!(o, "Profile {}", path.display())?;
    if let Some(d) = &p.description {
        writeln!(o, "  {d}")?;
    }

    let ns = &p.namespaces;
    let on: Vec<&str> = [
        ("user", ns.user),
        ("mount", ns.mount),
        ("pid", ns.pid),
        ("net", ns.net),
        ("ipc", ns.ipc),
        ("uts", ns.uts),
        ("cgroup", ns.cgroup),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(n, _)| *n)
    .collect();
    writeln!(
        o,
        "\nNamespaces ({}): {}",
        p.enforcement.namespaces.name(),
        list_or(&on, "none")
    )?;
    writeln!(o, "Hostname: {}", p.hostname)?;
    let net = match p.network {
        Network::None => "none: an empty network namespace, no interface at all",
        Network::Loopback => "loopback only: a private 127.0.0.1, nothing reaches the host",
    };
    writeln!(o, "Network: {net}")?;

    let fs = &p.filesystem;
    writeln!(
        o,
        "\nFiles the jail can see (a fresh root; no other host path exists inside):"
    )?;
    writeln!(o, "  read-only:  {}", paths(&fs.read_only))?;
    writeln!(o, "  read-write: {}", paths(&fs.read_write))?;
    let tmpfs: Vec<String> = fs
        .tmpfs
        .iter()
        .map(|t| {
            format!(
                "{} ({}, private, emptied at exit)",
                t.path.display(),
                format_size(t.size)
            )
        })
        .collect();
    writeln!(o, "  tmpfs:      {}", list_or(&tmpfs, "none"))?;
    let devs: Vec<String> = fs
        .devices
        .iter()
        .map(|d| format!("/dev/{}", d.name()))
        .collect();
    writeln!(o, "  devices:    {}", list_or(&devs, "none"))?;

    let l = &p.landlock;
    writeln!(
        o,
        "\nLandlock ({}): within what it sees, the plugin may",
        l.compat.name()
    )?;
    writeln!(o, "  read:       {}", paths(&l.read))?;
    writeln!(o, "  write:      {}", paths(&l.write))?;
    writeln!(o, "  execute:    {}", paths(&l.execute))?;
    writeln!(o, "  bind TCP:   {}", ports(&l.tcp_bind))?;
    writeln!(o, "  connect TCP: {}", ports(&l.tcp_connect))?;
    let scopes: Vec<&str> = l
        .scopes
        .iter()
        .map(|s| match s {
            Scope::AbstractUnixSocket => "no abstract unix socket outside the jail",
            Scope::Signal => "no signal to a process outside the jail",
        })
        .collect();
    writeln!(o, "  scopes:     {}", list_or(&scopes, "none"))?;

    write_mounts(o, p)?;

    let s = &p.seccomp;
    let default = match s.default_action {
        Action::KillProcess => "kill the process (the verdict names the syscall)".to_string(),
        Action::Trap => "send SIGSYS".to_string(),
        Action::Errno => format!(
            "fail with {}",
            crate::profile::units::errno_name(s.errno).unwrap_or("an error")
        ),
        Action::Log => "ALLOW and log it (audit mode: syscalls are not confined)".to_string(),
    };
    writeln!(
        o,
        "\nSeccomp ({}): any other syscall: {default}",
        p.enforcement.seccomp.name()
    )?;
    write_phase(
        o,
        "load (while the plugin is loaded and initialised)",
        &s.load,
    )?;
    if s.serve == s.load {
        writeln!(o, "  serve: the same filter as load")?;
    } else {
        write_phase(
            o,
            "serve (stacked on load once the plugin is ready)",
            &s.serve,
        )?;
    }

    let lim = &p.limits;
    writeln!(o, "\nLimits ({}):", p.enforcement.limits.name())?;
    let size = |v: Option<u64>| v.map_or("no limit".to_string(), format_size);
    let dur = |v: Option<std::time::Duration>| v.map_or("no limit".to_string(), format_duration);
    let num = |v: Option<u32>| v.map_or("no limit".to_string(), |n| n.to_string());
    writeln!(o, "  memory {}, swap {}", size(lim.memory), size(lim.swap))?;
    let cpu = lim
        .cpu
        .map_or("no limit".to_string(), |c| format!("{c} core(s)"));
    writeln!(o, "  cpu {cpu}, cpu time {}", dur(lim.cpu_time))?;
    writeln!(
        o,
        "  processes and threads {}, open files {}, largest file {}",
        num(lim.pids),
        num(lim.open_files),
        size(lim.file_size)
    )?;
    let io = &lim.io;
    if !io.is_empty() {
        let iops = |v: Option<u64>| v.map_or("no limit".to_string(), |n| n.to_string());
        writeln!(
            o,
            "  io: read {}/s {} iops, write {}/s {} iops",
            size(io.read_bps),
            iops(io.read_iops),
            size(io.write_bps),
            iops(io.write_iops)
        )?;
    }
    writeln!(
        o,
        "  wall time {}, per call {}, idle {}, largest message {}",
        dur(lim.wall_time),
        dur(lim.call_time),
        dur(lim.idle_time),
        format_size(lim.max_message)
    )?;

    let env = &p.environment;
    let set: Vec<String> = env.set.iter().map(|(k, v)| format!("{k}={v}")).collect();
    writeln!(
        o,
        "\nEnvironment: nothing else from the caller; passes {} (when set); sets {}",
        list_or(&env.pass, "nothing"),
        list_or(&set, "nothing")
    )?;
    if p.plugin.sha256.is_empty() {
        writeln!(o, "Plugin: any plugin file (no sha256 pin)")?;
    } else {
        writeln!(o, "Plugin: only a file whose sha256 is one of:")?;
        for h in &p.plugin.sha256 {
            writeln!(o, "  {h}")?;
        }
    }

    let dropped = best_effort(p);
    if dropped.is_empty() {
        writeln!(
            o,
            "\nEverything above is required: on a kernel that cannot enforce it, the run is refused."
        )?;
    } else {
        writeln!(
            o,
            "\nbest_effort: on a kernel that cannot enforce it, the run goes on without"
        )?;
        for (m, d) in dropped {
            writeln!(o, "  {m}: {d}")?;
        }
        writeln!(
            o,
            "  (the verdict of each run says what was actually enforced)"
        )?;
    }
    Ok(())
}

/// Each mount with the Landlock rights that reach it (a rule covers the tree under its
/// path), so a reviewer sees the two layers side by side; `plugjail check` warns where
/// they disagree.
fn write_mounts(o: &mut String, p: &Profile) -> std::fmt::Result {
    let fs = &p.filesystem;
    let mut mounts: Vec<(&Path, &str)> = Vec::new();
    mounts.extend(fs.read_only.iter().map(|m| (m.as_path(), "read-only bind")));
    mounts.extend(
        fs.read_write
            .iter()
            .map(|m| (m.as_path(), "read-write bind")),
    );
    mounts.extend(fs.tmpfs.iter().map(|t| (t.path.as_path(), "tmpfs")));
    let devices: Vec<PathBuf> = fs
        .devices
        .iter()
        .map(|d| Path::new("/dev").join(d.name()))
        .collect();
    mounts.extend(devices.iter().map(|d| (d.as_path(), "device")));
    if mounts.is_empty() {
        return Ok(());
    }
    writeln!(o, "\nEach mount, with the Landlock rights that reach it:")?;
    let width = mounts
        .iter()
        .map(|(m, _)| m.display().to_string().len())
        .max()
        .unwrap_or(0);
    let l = &p.landlock;
    for (mount, kind) in mounts {
        let mut rights = Vec::new();
        for (name, grants) in [
            ("read", &l.read),
            ("write", &l.write),
            ("execute", &l.execute),
        ] {
            let nearest = grants
                .iter()
                .filter(|g| mount.starts_with(g))
                .max_by_key(|g| g.components().count());
            match nearest {
                Some(g) if g == mount => rights.push(name.to_string()),
                Some(g) => rights.push(format!("{name} (from {})", g.display())),
                None => {}
            }
        }
        let rights = if rights.is_empty() {
            "nothing: opening anything in it fails".to_string()
        } else {
            rights.join(", ")
        };
        writeln!(
            o,
            "  {:width$}  {kind:15}  {rights}",
            mount.display().to_string()
        )?;
    }
    Ok(())
}

fn write_phase(o: &mut String, title: &str, phase: &Phase) -> std::fmt::Result {
    let arch = Arch::native();
    let total = resolve(arch, &phase_names(phase));
    writeln!(o, "  {title}: {} syscalls on {arch}", total.numbers.len())?;
    for rule in &phase.allow {
        let mut head = rule.syscalls.join(" ");
        for a in &rule.args {
            let _ = write!(head, " when arg{} {} {:#x}", a.index, a.op.name(), a.value);
            if let Some(m) = a.mask {
                let _ = write!(head, " (mask {m:#x})");
            }
        }
        match &rule.comment {
            Some(c) => writeln!(o, "    - {head}  # {c}")?,
            None => writeln!(o, "    - {head}")?,
        }
        if rule.syscalls.iter().any(|s| s.starts_with('@')) {
            let r = resolve(
                arch,
                &crate::profile::resolve::expand_names(rule.syscalls.iter().map(String::as_str)),
            );
            let names: Vec<&str> = r.numbers.iter().map(|(n, _)| *n).collect();
            write_wrapped(o, "        = ", &names)?;
        }
    }
    if total
        .absent
        .iter()
        .any(|n| !sysnames::GROUPS.iter().any(|g| g.syscalls.contains(n)))
    {
        let explicit: Vec<&str> = total
            .absent
            .iter()
            .copied()
            .filter(|n| !sysnames::GROUPS.iter().any(|g| g.syscalls.contains(n)))
            .collect();
        writeln!(
            o,
            "    (not syscalls on {arch}, so not allowed here: {})",
            explicit.join(" ")
        )?;
    }
    Ok(())
}

/// Writes `words` after `lead`, wrapped to a terminal-friendly width.
fn write_wrapped(o: &mut String, lead: &str, words: &[&str]) -> std::fmt::Result {
    const WIDTH: usize = 96;
    let indent = " ".repeat(lead.len());
    let mut line = lead.to_string();
    for w in words {
        if line.len() + w.len() + 1 > WIDTH && line.len() > lead.len() {
            writeln!(o, "{}", line.trim_end())?;
            line.clone_from(&indent);
        }
        line.push_str(w);
        line.push(' ');
    }
    writeln!(o, "{}", line.trim_end())
}

fn paths(list: &[PathBuf]) -> String {
    let shown: Vec<String> = list.iter().map(|p| p.display().to_string()).collect();
    list_or(&shown, "nothing")
}

fn ports(list: &[u16]) -> String {
    let shown: Vec<String> = list.iter().map(u16::to_string).collect();
    list_or(&shown, "no port")
}

fn list_or<S: AsRef<str>>(items: &[S], empty: &str) -> String {
    if items.is_empty() {
        return empty.to_string();
    }
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ")
}

//! The `seccomp` section: the default action, the load and serve phases with their allow
//! rules, every syscall name and `@group` checked against the real tables, argument
//! conditions, and the check that the serve phase allows nothing the load phase does not
//! (stacked filters only tighten).

use super::{ACTIONS, ARG_KEYS, PHASE_KEYS, RULE_KEYS, SECCOMP_KEYS};
use crate::profile::diag::Collector;
use crate::profile::fields::{self, Fields};
use crate::profile::model::*;
use crate::profile::resolve;
use crate::profile::units;
use crate::profile::yaml::{Node, Pos, Value};
use crate::sysnames;

pub(super) fn seccomp(c: &mut Collector, node: &Node) -> Seccomp {
    let mut out = Seccomp {
        default_action: Action::KillProcess,
        errno: libc::EPERM,
        load: Phase { allow: vec![] },
        serve: Phase { allow: vec![] },
    };
    let Some(f) = Fields::new(c, node, "seccomp", SECCOMP_KEYS) else {
        return out;
    };
    out.default_action = f.read(c, "default_action", Action::KillProcess, |c, n| {
        fields::choice(c, n, ACTIONS)
    });
    if let Some(n) = f.get("errno") {
        let choices: Vec<(&str, i32)> = units::ERRNOS.to_vec();
        if let Some(e) = fields::choice(c, n, &choices) {
            out.errno = e;
        }
        if out.default_action != Action::Errno {
            c.error_hint(
                n.pos,
                "`errno` is only used when `default_action` is `errno`",
                "remove it, or set `default_action: errno`",
            );
        }
    }
    let load = f.get("load").map(|n| phase(c, n, "seccomp.load"));
    let serve = f.get("serve").map(|n| phase(c, n, "seccomp.serve"));
    if let (Some(load), Some(serve)) = (&load, &serve) {
        check_serve_within_load(c, load, serve);
    }
    out.load = load.map(|p| p.phase).unwrap_or(Phase { allow: vec![] });
    // No serve phase written: serving keeps the load filter (nothing is stacked).
    out.serve = serve.map(|p| p.phase).unwrap_or_else(|| out.load.clone());
    out
}

/// A phase as read, with where each rule's syscalls were written for later checks.
struct ReadPhase {
    phase: Phase,
    names: Vec<(String, Pos)>,
}

fn phase(c: &mut Collector, node: &Node, what: &str) -> ReadPhase {
    let mut names = Vec::new();
    let allow = Fields::new(c, node, what, PHASE_KEYS)
        .and_then(|f| f.get("allow"))
        .and_then(|n| fields::list(c, n, |c, n| rule(c, n, &mut names)))
        .unwrap_or_default();
    ReadPhase {
        phase: Phase { allow },
        names,
    }
}

fn rule(c: &mut Collector, node: &Node, names: &mut Vec<(String, Pos)>) -> Option<Rule> {
    let f = Fields::new(c, node, "allow rule", RULE_KEYS)?;
    let Some(list) = f.get("syscalls") else {
        c.error_hint(
            node.pos,
            "an allow rule needs `syscalls`",
            "for example `- syscalls: [read, write]`",
        );
        return None;
    };
    let syscalls = fields::list(c, list, |c, n| {
        let name = fields::string(c, n)?;
        syscall_name(c, n.pos, &name)?;
        names.push((name.clone(), n.pos));
        Some(name)
    })?;
    if matches!(&list.value, Value::Seq(items) if items.is_empty()) {
        c.error(
            list.pos,
            "`syscalls` is empty; name at least one syscall or @group",
        );
    }
    let args = f.read(c, "args", vec![], |c, n| fields::list(c, n, arg_condition));
    let comment = f.read(c, "comment", None, |c, n| fields::string(c, n).map(Some));
    Some(Rule {
        syscalls,
        args,
        comment,
    })
}

/// Checks a syscall name or `@group` against the real tables.
fn syscall_name(c: &mut Collector, pos: Pos, name: &str) -> Option<()> {
    if name.starts_with('@') {
        if sysnames::group(name).is_some() {
            return Some(());
        }
        c.error_suggest(
            pos,
            format!("unknown syscall group `{name}`"),
            name,
            sysnames::GROUPS.iter().map(|g| g.name),
        );
        return None;
    }
    if sysnames::is_known(name) {
        return Some(());
    }
    let message = format!("unknown syscall `{name}` (not a syscall on x86_64 or aarch64)");
    c.error_suggest(pos, message, name, sysnames::all_names());
    None
}

fn arg_condition(c: &mut Collector, node: &Node) -> Option<ArgCondition> {
    let f = Fields::new(c, node, "argument condition", ARG_KEYS)?;
    let (Some(index), Some(op), Some(value)) = (f.get("index"), f.get("op"), f.get("value")) else {
        c.error_hint(
            node.pos,
            "an argument condition needs `index`, `op` and `value`",
            "for example `{ index: 1, op: eq, value: 0x5401 }`",
        );
        return None;
    };
    let ops: Vec<(&str, CmpOp)> = CmpOp::ALL.iter().map(|o| (o.name(), *o)).collect();
    let index = fields::integer(c, index, 0u8, 5);
    let op_pos = op.pos;
    let op = fields::choice(c, op, &ops);
    let value = fields::integer(c, value, 0, u64::MAX);
    let mask = f.read(c, "mask", None, |c, n| {
        fields::integer(c, n, 0, u64::MAX).map(Some)
    });
    if (op == Some(CmpOp::MaskedEq)) != mask.is_some() {
        c.error(op_pos, "`mask` goes with `op: masked_eq`, and only with it");
        return None;
    }
    Some(ArgCondition {
        index: index?,
        op: op?,
        value: value?,
        mask,
    })
}

/// Stacked seccomp filters can only take permissions away, so a syscall the serve phase
/// allows but the load phase does not would still be blocked: say so instead.
fn check_serve_within_load(c: &mut Collector, load: &ReadPhase, serve: &ReadPhase) {
    let load_set = resolve::expand_names(load.names.iter().map(|(n, _)| n.as_str()));
    for (name, pos) in &serve.names {
        let wanted = resolve::expand_names(std::iter::once(name.as_str()));
        if let Some(missing) = wanted.iter().find(|s| !load_set.contains(*s)) {
            let from = if missing == name {
                String::new()
            } else {
                format!(" (from `{name}`)")
            };
            c.error_hint(
                *pos,
                format!("serve allows `{missing}`{from}, but load does not"),
                "seccomp filters stack and only tighten: allow it in `load` too, or drop it here",
            );
        }
    }
}

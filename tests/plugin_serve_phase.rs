//! The two seccomp phases of plugin mode, through the real jail as root and rootless: the
//! load filter stops a plugin's constructor; the serve phase (the jail's serve gate) stops
//! load-only syscalls during a call and holds against the plugin's own code, names the
//! phase, arguments and key in the verdict, carries out `errno` and `trap`, and without
//! ptrace is refused or reported missing.

mod common;

use std::time::Duration;

use common::{TempDir, call, call_with, default_profile, extend_profile, jail_modes, plugin};

#[test]
fn a_forbidden_syscall_in_a_constructor_is_stopped_by_the_load_filter() {
    let so = plugin("ctor_socket");
    for mode in jail_modes() {
        let c = call(mode, &default_profile(), &so, "run", None);
        assert_eq!(c.code, Some(8), "{}", c.describe());
        assert_eq!(c.outcome(), "seccomp_violation", "{}", c.describe());
        // Named by the jail's init when it could trace the jail.
        if c.report["enforced"]["seccomp"]["naming"] == "ptrace" {
            assert_eq!(c.report["syscall"]["name"], "socket", "{}", c.describe());
        }
        assert_eq!(c.report["calls"], 0);
    }
}

#[test]
fn execve_during_a_call_is_stopped_by_the_serve_filter() {
    let so = plugin("escape");
    for mode in jail_modes() {
        // mkdir is allowed while loading (default.yaml), so naming it proves the serve
        // filter is stacked, and is the traced variant (jail step 26c).
        for (method, syscalls) in [("shell", &["execve"][..]), ("mkdir", &["mkdir", "mkdirat"])] {
            let c = call(mode, &default_profile(), &so, method, None);
            assert_eq!(c.code, Some(8), "{method}: {}", c.describe());
            assert_eq!(c.outcome(), "seccomp_violation", "{}", c.describe());
            let name = c.report["syscall"]["name"].as_str().unwrap_or_default();
            assert!(syscalls.contains(&name), "{method}: {}", c.describe());
            assert_eq!(c.report["syscall"]["phase"], "serve", "{}", c.describe());
            assert_eq!(c.report["enforced"]["seccomp_serve"]["naming"], "ptrace");
        }
    }
}

/// Attacks on the serve phase from the plugin's own code, which runs in the stub's address
/// space before serving (tests/plugins/serve_attack.cpp). Each must end in a named
/// violation when call() makes a load-only syscall, or be refused before serving. The
/// first three and `replace_fd` let `mkdir` run while serving against a stub that read and
/// installed its own serve filter (the design before the jail's serve gate); `own_filter`
/// is the gate's own weak point, a forged gate answer, and is refused by the filter count.
#[test]
#[cfg(target_arch = "x86_64")]
fn the_serve_phase_holds_against_the_plugins_own_code() {
    let so = plugin("serve_attack");
    let dir = TempDir::new("serve-attack", 0o755);
    let attacks = [
        "patch_read",
        "syscall_text",
        "syscall_got",
        "replace_fd",
        "thread_race",
        "own_filter",
    ];
    for mode in jail_modes() {
        for attack in attacks {
            // own_filter needs seccomp() while loading to stack its filter at all.
            let extra = if attack == "own_filter" {
                "seccomp:\n  load:\n    allow:\n      - syscalls: [seccomp]\n"
            } else {
                ""
            };
            let body = format!("environment:\n  set: {{ PLUGJAIL_ATTACK: {attack} }}\n{extra}");
            let profile = extend_profile(&dir, attack, "default", &body);
            let c = call(mode, &profile, &so, "mkdir", None);
            let what = format!("{attack}: {}", c.describe());
            let syscall = &c.report["syscall"];
            match attack {
                // The stub's end of the channel socket was replaced: the init cannot hand
                // the channel over, and nothing is served.
                "replace_fd" => {
                    assert_eq!(c.outcome(), "protocol_violation", "{what}");
                    assert_eq!(c.report["step"], "serve_switch", "{what}");
                    assert_eq!(c.report["calls"], 0, "{what}");
                    assert_eq!(c.code, Some(4), "{what}");
                }
                // The forged gate answer is not believed: socket() stays refused.
                "own_filter" => {
                    assert_eq!(c.outcome(), "seccomp_violation", "{what}");
                    assert_eq!(syscall["name"], "socket", "{what}");
                    assert_eq!(syscall["phase"], "load", "{what}");
                    let msg = c.report["message"].as_str().unwrap_or_default();
                    assert!(msg.contains("installed itself"), "{what}");
                }
                _ => {
                    assert_eq!(c.outcome(), "seccomp_violation", "{what}");
                    assert_eq!(c.code, Some(8), "{what}");
                    assert_eq!(syscall["phase"], "serve", "{what}");
                    let name = syscall["name"].as_str().unwrap_or_default();
                    let expected: &[&str] = if attack == "thread_race" {
                        &["umask", "mkdir", "mkdirat"]
                    } else {
                        &["mkdir", "mkdirat"]
                    };
                    assert!(expected.contains(&name), "{what}");
                    assert_eq!(c.report["enforced"]["seccomp_serve"]["phase"], "serve");
                }
            }
            assert!(c.stdout.is_empty(), "no RESULT may arrive: {what}");
        }
    }
}

/// A load-only syscall during a call names the serve phase, the key that would allow it,
/// and for an argument-conditioned syscall the argument that decided (ioctl FIONBIO: the
/// default profile allows only TCGETS and FIONREAD).
#[test]
fn a_serve_phase_refusal_names_the_phase_the_arguments_and_the_key() {
    let so = plugin("escape");
    for mode in jail_modes() {
        let c = call(mode, &default_profile(), &so, "fionbio", None);
        let what = c.describe();
        assert_eq!(c.outcome(), "seccomp_violation", "{what}");
        let syscall = &c.report["syscall"];
        assert_eq!(syscall["name"], "ioctl", "{what}");
        assert_eq!(syscall["phase"], "serve", "{what}");
        assert_eq!(syscall["args"][0]["index"], 1, "{what}");
        assert_eq!(syscall["args"][0]["value"], "0x5421", "{what}");
        assert_eq!(syscall["args"][0]["constant"], "FIONBIO", "{what}");
        let msg = c.report["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("seccomp.load.allow and seccomp.serve.allow")
                && msg.contains("value: 0x5421"),
            "{what}"
        );
        assert!(
            c.stderr
                .contains("arg 1 = 0x5421 FIONBIO in the serve phase"),
            "{what}"
        );
    }
}

/// The serve gate carries out `errno` and `trap` itself once serving: a load-only syscall
/// during a call fails (errno, the session goes on) or raises SIGSYS (trap), and does not
/// run; while loading, the same syscall runs.
#[test]
fn the_serve_gate_applies_errno_and_trap_like_the_kernel() {
    let so = plugin("serve_attack");
    let dir = TempDir::new("gate-actions", 0o755);
    for mode in jail_modes() {
        let errno = extend_profile(
            &dir,
            "errno",
            "default",
            "seccomp:\n  default_action: errno\n",
        );
        let c = call(mode, &errno, &so, "mkdir", None);
        let what = c.describe();
        // mkdir failed without running (status 2), and the jail was not ended for it.
        assert_eq!(c.outcome(), "ok", "{what}");
        assert_eq!(c.report["call_error"]["status"], 2, "{what}");
        assert_eq!(c.code, Some(1), "{what}");
        assert_eq!(
            c.report["enforced"]["seccomp_serve"]["default_action"],
            "errno"
        );

        let trap = extend_profile(
            &dir,
            "trap",
            "default",
            "seccomp:\n  default_action: trap\n",
        );
        let c = call(mode, &trap, &so, "mkdir", None);
        let what = c.describe();
        // No handler: SIGSYS ends the stub (reported as a seccomp violation, unnamed).
        assert_eq!(c.code, Some(8), "{what}");
        assert!(c.stdout.is_empty(), "{what}");
    }
}

/// Without ptrace the serve gate cannot work: `required` seccomp refuses plugin mode,
/// `best_effort` runs the session under the load phase and says so.
#[test]
fn without_ptrace_the_serve_phase_is_refused_or_reported_missing() {
    let so = plugin("hello");
    let dir = TempDir::new("no-ptrace", 0o755);
    let lenient = extend_profile(
        &dir,
        "lenient",
        "default",
        "enforcement:\n  seccomp: best_effort\n",
    );
    for mode in jail_modes() {
        let c = call_with(
            mode,
            &default_profile(),
            &so,
            "greet",
            None,
            Duration::from_secs(60),
            common::deny_ptrace,
        );
        let what = c.describe();
        assert_eq!(c.code, Some(125), "{what}");
        assert_eq!(c.report["step"], "serve_gate", "{what}");

        let c = call_with(
            mode,
            &lenient,
            &so,
            "greet",
            Some(b"x"),
            Duration::from_secs(60),
            common::deny_ptrace,
        );
        let what = c.describe();
        assert_eq!((c.code, c.outcome()), (Some(0), "ok"), "{what}");
        assert_eq!(c.stdout, b"hello, x", "{what}");
        let enforced = &c.report["enforced"];
        assert!(enforced.get("seccomp_serve").is_none(), "{what}");
        assert!(enforced["seccomp_serve_skipped"].is_string(), "{what}");
    }
}

//! Hostile and broken plugins through the real jail, as root and rootless: crashes end in
//! `signaled` and the next session works, bytes written to the channel are protocol
//! violations, a noisy plugin cannot flood the host, and plugins are refused before they
//! run (a wrong ABI, outside the sha256 allowlist, not a regular file, over the size cap).

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use common::{
    TempDir, call, call_within, default_profile, expect, extend_profile, jail_modes, plugin,
    session_opts, spawn,
};
use plugjail::CallError;

#[test]
fn a_session_with_a_plugin_outside_the_allowlist_reports_the_rejection() {
    let so = plugin("hello");
    let dir = TempDir::new("allow-session", 0o755);
    let pin = format!("plugin:\n  sha256: [{}]\n", "cd".repeat(32));
    let profile = extend_profile(&dir, "allow", "default", &pin);
    for mode in jail_modes() {
        let mut s = spawn(&session_opts(mode, &profile, &so));
        assert!(
            matches!(s.hello(), Err(CallError::Ended)),
            "[{}]",
            mode.name()
        );
        let v = s.close();
        expect(&v, "plugin_rejected", "allowlist via Session");
        let msg = v.message.unwrap_or_default();
        assert!(
            msg.contains("is not in the profile's plugin.sha256 allowlist"),
            "{msg}"
        );
    }
}

#[test]
fn crashes_are_signaled_and_the_next_session_works() {
    let crash = plugin("crash");
    let hello = plugin("hello");
    for mode in jail_modes() {
        for (method, signal) in [
            ("segv", libc::SIGSEGV),
            ("abort", libc::SIGABRT),
            ("throw", libc::SIGABRT),
        ] {
            let mut s = spawn(&session_opts(mode, &default_profile(), &crash));
            s.hello().expect("hello");
            match s.call(method, b"") {
                Err(CallError::Ended) => {}
                other => panic!("[{}] {method}: {other:?}", mode.name()),
            }
            let v = s.close();
            expect(&v, "signaled", method);
            assert_eq!(v.signal, Some(signal), "{method}: {:#}", v.json);
            assert_eq!(v.json["exit_status"], 128 + signal);
        }
        let mut s = spawn(&session_opts(mode, &default_profile(), &hello));
        assert_eq!(
            s.call("greet", b"survivor").expect("greet"),
            b"hello, survivor"
        );
        expect(&s.close(), "ok", "after the crashes");
    }
}

#[test]
fn bytes_the_plugin_writes_to_the_channel_are_protocol_violations() {
    let so = plugin("channel_writer");
    let cap = 1 << 20;
    let dir = TempDir::new("proto", 0o755);
    // A 1 MiB frame cap: whatever the plugin claims, the host reserves no more.
    let profile = extend_profile(&dir, "cap", "default", "limits:\n  max_message: 1M\n");
    for mode in jail_modes() {
        for (method, says) in [
            ("garbage", "unknown frame type"),
            (
                "huge_length",
                "4294967295 bytes exceeds the maximum message size",
            ),
            ("half_frame", "channel closed after 26 of the 116 bytes"),
            // Only plugjail writes SESSION, before the jail: one from inside is forged.
            ("forge_session", "unexpected SESSION frame"),
        ] {
            let mut s = spawn(&session_opts(mode, &profile, &so));
            s.hello().expect("hello");
            match s.call(method, b"") {
                Err(CallError::Protocol(e)) => assert!(e.to_string().contains(says), "{e}"),
                other => panic!("[{}] {method}: {other:?}", mode.name()),
            }
            assert!(
                s.peak_buffer() <= cap,
                "{method}: host buffer {}",
                s.peak_buffer()
            );
            let v = s.close();
            expect(&v, "protocol_violation", method);
            assert!(
                v.message.as_deref().unwrap_or("").contains(says),
                "{:#}",
                v.json
            );
            // The same through `plugjail call`: plugjail itself is the host there.
            let c = call(mode, &profile, &so, method, None);
            assert_eq!(c.code, Some(4), "{}", c.describe());
            assert_eq!(c.outcome(), "protocol_violation", "{}", c.describe());
            assert!(
                c.report["resources"]["max_rss_bytes"].as_u64().unwrap_or(0) < 64 << 20,
                "{}",
                c.describe()
            );
        }
    }
}

#[test]
fn a_wrong_abi_is_rejected_and_the_plugin_never_runs() {
    let so = plugin("wrong_abi");
    for mode in jail_modes() {
        // A directory the jail may write to, and the marker the plugin would leave there
        // from init() or call().
        let dir = TempDir::new("abi", 0o777);
        let marker = dir.join("ran");
        let body = format!(
            "filesystem:\n  read_write: [{d}]\nlandlock:\n  read: [{d}]\n  write: [{d}]\n\
             environment:\n  set: {{ PLUGJAIL_TEST_MARKER: {m} }}\n",
            d = dir.path().display(),
            m = marker.display()
        );
        let profile = extend_profile(&dir, "marker", "default", &body);
        let c = call(mode, &profile, &so, "run", None);
        assert_eq!(c.code, Some(3), "{}", c.describe());
        assert_eq!(c.outcome(), "plugin_rejected", "{}", c.describe());
        assert_eq!(c.report["plugin_failure"]["stage"], "abi");
        let msg = c.report["plugin_failure"]["message"].as_str().unwrap_or("");
        assert!(msg.contains("ABI version 999"), "{}", c.describe());
        assert!(!marker.exists(), "the plugin's init or call ran");
        let mut s = spawn(&session_opts(mode, &profile, &so));
        assert!(matches!(s.hello(), Err(CallError::Startup { .. })));
        let v = s.close();
        expect(&v, "plugin_rejected", "wrong ABI via Session");
        assert_eq!(v.json["plugin_failure"]["stage"], "abi", "{:#}", v.json);
        assert!(!marker.exists(), "the plugin's init or call ran");
    }
}

#[test]
fn a_plugin_outside_the_allowlist_is_rejected_before_anything_runs() {
    let so = plugin("hello");
    let dir = TempDir::new("allow", 0o755);
    let other = "ab".repeat(32);
    let profile = extend_profile(
        &dir,
        "allow",
        "default",
        &format!("plugin:\n  sha256: [{other}]\n"),
    );
    for mode in jail_modes() {
        let c = call(mode, &profile, &so, "greet", Some(b"x"));
        assert_eq!(c.code, Some(3), "{}", c.describe());
        assert_eq!(c.outcome(), "plugin_rejected", "{}", c.describe());
        assert_eq!(c.report["step"], "open_plugin");
        assert!(c.stdout.is_empty());
        // Nothing ran: no jail was built, so nothing was enforced or measured.
        assert!(c.report.get("enforced").is_none(), "{}", c.describe());
        assert!(c.report.get("resources").is_none(), "{}", c.describe());
    }
}

/// A `--plugin` that is not a regular file is refused at once, before any deadline exists:
/// a FIFO nobody writes to (opening it for reading used to wait for a writer forever), a
/// device that never ends, a directory.
#[test]
fn a_plugin_that_is_not_a_regular_file_is_refused_without_blocking() {
    let dir = TempDir::new("not-regular", 0o755);
    let fifo = dir.join("plugin.so");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0, "mkfifo");
    common::chmod(&fifo, 0o666);
    let cases = [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a character device"),
        (dir.path(), "a directory"),
    ];
    for mode in jail_modes() {
        for (so, kind) in cases {
            let c = call_within(
                mode,
                &default_profile(),
                so,
                "greet",
                Some(b"x"),
                Duration::from_secs(10),
            );
            let what = format!("--plugin {} ({kind})", so.display());
            assert!(!c.timed_out, "{what} blocked plugjail:\n{}", c.describe());
            assert_eq!(c.code, Some(3), "{what}:\n{}", c.describe());
            assert_eq!(c.outcome(), "plugin_rejected", "{what}:\n{}", c.describe());
            assert_eq!(c.report["step"], "open_plugin", "{what}");
            let message = format!("is {kind}, not a regular file");
            assert!(
                c.report["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&message)),
                "{what}: the verdict's message does not say `{message}`:\n{}",
                c.describe()
            );
            assert!(c.report.get("enforced").is_none(), "{}", c.describe());
        }
    }
}

/// A plugin over the size cap is refused by its size (fstat), before a byte is read: a
/// sparse file of cap + 1 bytes, watched with inotify, is opened but never read.
#[test]
fn an_oversized_plugin_is_refused_without_being_read() {
    let dir = TempDir::new("oversized", 0o755);
    let so = dir.join("big.so");
    let f = std::fs::File::create(&so).expect("create");
    f.set_len(plugjail::plugin_file::MAX_PLUGIN_BYTES + 1)
        .expect("ftruncate");
    drop(f);
    common::chmod(&so, 0o644);
    for mode in jail_modes() {
        // SAFETY: inotify_init1 takes flags only; the result is checked and owned below.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: inotify_init1 just returned this descriptor and nothing else owns it.
        let inotify = unsafe { OwnedFd::from_raw_fd(fd) };
        let c_path = std::ffi::CString::new(so.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid inotify descriptor and a NUL-terminated path.
        let wd = unsafe {
            libc::inotify_add_watch(
                inotify.as_raw_fd(),
                c_path.as_ptr(),
                libc::IN_OPEN | libc::IN_ACCESS,
            )
        };
        assert!(
            wd >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        let c = call_within(
            mode,
            &default_profile(),
            &so,
            "greet",
            Some(b"x"),
            Duration::from_secs(30),
        );
        assert_eq!(c.code, Some(3), "{}", c.describe());
        assert_eq!(c.outcome(), "plugin_rejected", "{}", c.describe());
        assert!(
            c.report["message"]
                .as_str()
                .is_some_and(|m| m.contains("the plugin is larger than")),
            "{}",
            c.describe()
        );
        let mut events = 0u32;
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reads into a buffer of the given length that we own.
            let n = unsafe { libc::read(inotify.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let n = match usize::try_from(n) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            let mut at = 0;
            while at < n {
                // SAFETY: the kernel wrote whole inotify_event records; read_unaligned copes
                // with the byte buffer's alignment.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                events |= ev.mask;
                at += std::mem::size_of::<libc::inotify_event>() + ev.len as usize;
            }
        }
        assert!(
            events & libc::IN_OPEN != 0,
            "[{}] inotify saw no open of {}, so it cannot tell whether it was read",
            mode.name(),
            so.display()
        );
        assert!(
            events & libc::IN_ACCESS == 0,
            "[{}] plugjail read {} (inotify IN_ACCESS) although fstat gives a size over the cap",
            mode.name(),
            so.display()
        );
    }
}

#[test]
fn a_noisy_plugin_cannot_flood_the_host() {
    let so = plugin("noisy");
    for mode in jail_modes() {
        let c = call(mode, &default_profile(), &so, "flood", None);
        assert_eq!(c.code, Some(0), "{}", c.describe());
        assert_eq!(c.stdout, b"done");
        // 16 MiB were written to stdout, stderr and the log; the host got the budgets.
        let bound =
            plugjail::protocol::consts::LOG_BUDGET + 3 * plugjail::protocol::consts::OUTPUT_BUDGET;
        assert!(
            c.stderr.len() < bound + (64 << 10),
            "{} bytes on stderr",
            c.stderr.len()
        );
        // Each kind of loss is said once: the log beyond its budget, and the output the
        // full pipe refused (the plugin's writes failed, so only that it happened is known).
        let tail = &c.stderr[c.stderr.len().saturating_sub(500)..];
        assert_eq!(
            c.stderr.matches("bytes of plugin log dropped").count(),
            1,
            "{tail}"
        );
        let output_notes = c.stderr.matches("plugin stdout/stderr: ").count();
        assert_eq!(output_notes, 1, "{tail}");
        assert!(c.stderr.contains("the pipe was full"), "{tail}");
    }
}

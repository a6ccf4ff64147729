//! The cgroup module for real: limits enforced by the kernel and reported back.
//!
//! Works on whatever backend the host has: v1 hybrid as root on the development machine,
//! pure v2 in the VM (scripts/vm-test.sh, as root and as uid 65534 in a delegated
//! subtree). Each test forks a child that waits on a pipe until the parent has added it to
//! the jail cgroup, then does one hostile thing with raw syscalls only (the test harness is
//! multi-threaded). The test process itself is never moved on v1; on v2 it moves into its
//! own leaf, which is how the supervisor works there. The forked child and the cgroup
//! set-up are in tests/common/cgroup_harness.rs.
//!
//! Skips print a reason; with `PLUGJAIL_TEST_STRICT=1` a skip fails.
//! `PLUGJAIL_TEST_IO_DIR` names a directory on a block device for the io test (default:
//! cargo's target tmp dir).

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cgroup_harness::{
    MIB, assert_gone, close, create, describe, direct_writer, dirs, fork_child, host_with, io_dir,
    limits, now, pipe,
};
use common::{NOBODY, skip};
use plugjail::cgroup::{self, Backend, CgroupError};
use plugjail::probe::{self, CgroupMode, Controller};
use plugjail::profile::{IoLimits, Level, Limits};

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    let Some(caps) = host_with(&[Controller::Memory]) else {
        return;
    };
    let l = Limits {
        memory: Some(64 * MIB),
        ..limits()
    };
    let cg = create(&l, &[], &caps);
    let size = usize::try_from(256 * MIB).unwrap();
    let hog = move |_| {
        // SAFETY: a fresh private anonymous mapping; nothing else uses it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return 2;
        }
        for off in (0..size).step_by(4096) {
            // SAFETY: `off` < `size`, so the result stays inside the mapping.
            let byte = unsafe { p.cast::<u8>().add(off) };
            // SAFETY: `byte` is in the fresh read-write mapping, which nothing else uses.
            unsafe { std::ptr::write_volatile(byte, 1) };
        }
        0
    };
    // SAFETY: `hog` makes raw syscalls only (mmap, then page faults).
    let child = unsafe { fork_child(hog) };
    cg.add(child.pid).unwrap();
    child.release();
    let status = child.wait();
    let report = cg.report();
    let d = dirs(&cg);
    cg.remove().unwrap();
    assert_gone(&d);
    eprintln!("memory: child {}; {report:?}", describe(status));
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "the hog was not killed: {}",
        describe(status)
    );
    assert!(report.oom(), "no oom kill reported: {report:?}");
    let peak = report.memory_peak.expect("a peak memory figure");
    assert!(
        (48 * MIB..=68 * MIB).contains(&peak),
        "peak {} MiB is not near the 64 MiB limit",
        peak / MIB
    );
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["oom_kills"].as_u64().unwrap() >= 1, "{json}");
}

#[test]
fn fork_bomb_meets_the_pids_limit() {
    let Some(caps) = host_with(&[Controller::Pids]) else {
        return;
    };
    let l = Limits {
        pids: Some(16),
        ..limits()
    };
    let cg = create(&l, &[], &caps);
    let bomb = |_| {
        let mut kids = [0 as libc::pid_t; 64];
        let mut n = 0;
        let mut err = 0;
        while n < kids.len() {
            // SAFETY: the grandchild only pauses until killed.
            let c = unsafe { libc::fork() };
            if c < 0 {
                err = nix::errno::Errno::last_raw();
                break;
            }
            if c == 0 {
                loop {
                    // SAFETY: no arguments; waits for the SIGKILL below.
                    unsafe { libc::pause() };
                }
            }
            kids[n] = c;
            n += 1;
        }
        for &k in &kids[..n] {
            // SAFETY: no memory passed; our own child, by pid, while still unreaped.
            unsafe { libc::kill(k, libc::SIGKILL) };
            // SAFETY: as above; no status is asked for.
            unsafe { libc::waitpid(k, std::ptr::null_mut(), 0) };
        }
        // n <= 64: the fallback is never taken.
        if err == libc::EAGAIN {
            i32::try_from(n).unwrap_or(200)
        } else {
            200
        }
    };
    // SAFETY: `bomb` makes raw syscalls only (fork, pause, kill, waitpid).
    let child = unsafe { fork_child(bomb) };
    cg.add(child.pid).unwrap();
    child.release();
    let status = child.wait();
    let report = cg.report();
    cg.remove().unwrap();
    eprintln!("pids: child {}; {report:?}", describe(status));
    let forks = libc::WEXITSTATUS(status);
    assert!(
        libc::WIFEXITED(status) && (8..=15).contains(&forks),
        "expected EAGAIN after at most 15 forks: {}",
        describe(status)
    );
    assert!(
        report.pids_limit(),
        "pids limit hit not reported: {report:?}"
    );
}

#[test]
fn busy_loop_gets_its_cpu_share() {
    let Some(caps) = host_with(&[Controller::Cpu]) else {
        return;
    };
    let l = Limits {
        cpu: Some(0.2),
        ..limits()
    };
    let cg = create(&l, &[], &caps);
    let busy = |_| {
        let start = now();
        let mut x = 0u64;
        while now() - start < 2.0 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        0
    };
    // SAFETY: `busy` makes one raw syscall (clock_gettime, through `now`).
    let child = unsafe { fork_child(busy) };
    cg.add(child.pid).unwrap();
    let t0 = Instant::now();
    child.release();
    let status = child.wait();
    let wall = t0.elapsed();
    let report = cg.report();
    cg.remove().unwrap();
    eprintln!("cpu: child {} after {wall:?}; {report:?}", describe(status));
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let usage = report.cpu_usage_usec.expect("a cpu usage figure");
    let share = usage as f64 / wall.as_micros() as f64;
    // The quota caps the share; a busy machine may give less, so the floor is low and the
    // throttling counter shows the quota at work.
    assert!(
        (0.05..=0.35).contains(&share),
        "cpu share {:.0}% of wall, wanted about 20%",
        share * 100.0
    );
    assert!(
        report.cpu_throttled_periods.is_some_and(|n| n > 0),
        "never throttled: {report:?}"
    );
}

#[test]
fn direct_writer_is_throttled_to_the_io_limit() {
    let Some(caps) = host_with(&[Controller::Io]) else {
        return;
    };
    let dir = match io_dir() {
        Ok(d) => d,
        Err(why) => return skip(&why),
    };
    let limit = 2 * MIB;
    let l = Limits {
        io: IoLimits {
            write_bps: Some(limit),
            ..IoLimits::default()
        },
        ..limits()
    };
    let plan = cgroup::prepare(&l, std::slice::from_ref(&dir), Level::Required, &caps).unwrap();
    if plan.io_devices.is_empty() {
        return skip(&format!(
            "{} is not on a block device (tmpfs, overlay?): nothing to throttle; set \
             PLUGJAIL_TEST_IO_DIR",
            dir.display()
        ));
    }
    let file = dir.join(format!("plugjail-io-{}", std::process::id()));
    let cpath = CString::new(file.as_os_str().as_bytes()).unwrap();
    let mib = 6;
    // Unthrottled baseline, outside the cgroup.
    // SAFETY: a direct_writer body makes raw syscalls only (see there).
    let base = unsafe { fork_child(direct_writer(&cpath, mib)) };
    base.release();
    let base_status = base.wait();
    if libc::WEXITSTATUS(base_status) == 3 {
        let _ = std::fs::remove_file(&file);
        return skip(&format!("O_DIRECT open failed in {}", dir.display()));
    }
    let [base_secs] = base.read_f64s::<1>();
    let cg = plan.create().unwrap();
    // SAFETY: as above.
    let child = unsafe { fork_child(direct_writer(&cpath, mib)) };
    cg.add(child.pid).unwrap();
    child.release();
    let status = child.wait();
    let report = cg.report();
    cg.remove().unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "writer {}",
        describe(status)
    );
    let [secs] = child.read_f64s::<1>();
    let rate = (mib as u64 * MIB) as f64 / secs;
    eprintln!(
        "io: {mib} MiB O_DIRECT in {secs:.2}s ({:.2} MiB/s; unthrottled {base_secs:.2}s) \
         against {} MiB/s on {:?}",
        rate / MIB as f64,
        limit / MIB,
        report.io_devices
    );
    assert!(
        rate <= 1.5 * limit as f64 && rate >= 0.25 * limit as f64,
        "throughput {:.2} MiB/s is not near the {} MiB/s limit",
        rate / MIB as f64,
        limit / MIB
    );
}

#[test]
fn dropping_a_cgroup_kills_its_processes_and_leaves_nothing() {
    let Some(caps) = host_with(&[Controller::Memory]) else {
        return;
    };
    let l = Limits {
        memory: Some(64 * MIB),
        ..limits()
    };
    let cg = create(&l, &[], &caps);
    let d = dirs(&cg);
    assert!(d.iter().all(|p| p.is_dir()));
    let pause = |_| {
        loop {
            // SAFETY: no arguments; waits for a signal.
            unsafe { libc::pause() };
        }
    };
    // SAFETY: `pause` makes one raw syscall.
    let child = unsafe { fork_child(pause) };
    cg.add(child.pid).unwrap();
    child.release();
    drop(cg);
    let status = child.wait();
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "{}",
        describe(status)
    );
    assert_gone(&d);
}

/// utime + stime of `pid` in clock ticks (/proc/PID/stat fields 14 and 15).
fn cpu_ticks(pid: libc::pid_t) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let n = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    n(11) + n(12)
}

/// Pausing a session's jail: a frozen cgroup's spinning process gets no CPU, thawing gives
/// it back, freezing is idempotent, and a frozen cgroup is still killed and removed (v1
/// needs a thaw after the kill, v2 kills frozen tasks).
#[test]
fn a_frozen_cgroup_uses_no_cpu_thaws_and_is_removed_while_frozen() {
    let Some(caps) = host_with(&[]) else {
        return;
    };
    let mut plan = cgroup::prepare(&limits(), &[], Level::Required, &caps).unwrap();
    plan.add_freezer(&caps);
    let cg = plan
        .create()
        .unwrap_or_else(|e| panic!("create: {e}\n{}", plan.describe_steps()));
    if !cg.can_freeze() {
        skip(&format!(
            "no freezer for a jail cgroup here (mode {}, backend {}, uid {}): neither a v2 \
             leaf nor a writable v1 freezer hierarchy",
            caps.mode.name(),
            cg.backend().name(),
            nix::unistd::geteuid()
        ));
        return;
    }
    let spin = |_| {
        loop {
            std::hint::spin_loop();
        }
    };
    // SAFETY: `spin` makes no call at all.
    let child = unsafe { fork_child(spin) };
    cg.add(child.pid).unwrap();
    child.release();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    cg.freeze(Duration::from_secs(1)).expect("freeze");
    let latency = t.elapsed();
    // Idempotent: a second freeze of a frozen cgroup returns at once.
    cg.freeze(Duration::from_secs(1)).expect("freeze again");
    let before = cpu_ticks(child.pid);
    std::thread::sleep(Duration::from_millis(300));
    let frozen = cpu_ticks(child.pid) - before;
    cg.thaw().expect("thaw");
    cg.thaw().expect("thaw again");
    let before = cpu_ticks(child.pid);
    std::thread::sleep(Duration::from_millis(300));
    let thawed = cpu_ticks(child.pid) - before;
    cg.freeze(Duration::from_secs(1))
        .expect("freeze before the kill");
    let d = dirs(&cg);
    let t = Instant::now();
    cg.remove().expect("remove a frozen cgroup");
    let removal = t.elapsed();
    let status = child.wait();
    eprintln!(
        "freezer ({}): frozen in {latency:?}; {frozen} ticks in 300 ms frozen, {thawed} \
         thawed; a frozen cgroup removed in {removal:?}",
        caps.mode.name()
    );
    assert_gone(&d);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "{}",
        describe(status)
    );
    assert!(frozen <= 1, "{frozen} ticks of CPU while frozen");
    assert!(
        thawed >= 5,
        "only {thawed} ticks of CPU in 300 ms once thawed"
    );
    assert!(removal < Duration::from_secs(2), "{removal:?}");
}

#[test]
fn kill_all_stops_a_fork_storm() {
    let Some(caps) = host_with(&[Controller::Pids]) else {
        return;
    };
    // Every process forks as fast as it can; pids.max keeps the storm to 64 processes.
    let l = Limits {
        pids: Some(64),
        ..limits()
    };
    let cg = create(&l, &[], &caps);
    let storm = |_| {
        loop {
            // SAFETY: parent and children alike only fork again, forever: raw syscalls
            // in single-threaded processes.
            unsafe { libc::fork() };
        }
    };
    // SAFETY: `storm` makes raw syscalls only (fork).
    let child = unsafe { fork_child(storm) };
    cg.add(child.pid).unwrap();
    child.release();
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    cg.kill_all().unwrap();
    let took = t0.elapsed();
    let status = child.wait();
    let d = dirs(&cg);
    cg.remove().unwrap();
    assert_gone(&d);
    eprintln!("fork storm killed in {took:?}");
    assert!(libc::WIFSIGNALED(status), "{}", describe(status));
}

#[test]
fn v2_clone_into_cgroup_places_the_child() {
    let Some(caps) = host_with(&[Controller::Memory]) else {
        return;
    };
    if caps.mode != CgroupMode::V2 {
        // Not a skip: v1 has no CLONE_INTO_CGROUP; the VM test covers this.
        eprintln!(
            "n/a: CLONE_INTO_CGROUP is a cgroup v2 feature (mode {})",
            caps.mode.name()
        );
        return;
    }
    let l = Limits {
        memory: Some(64 * MIB),
        ..limits()
    };
    let cg = create(&l, &[], &caps);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&cg.dir_fd().expect("a v2 dir fd"));
    let (r, w) = pipe();
    // struct clone_args, size version 2 (88 bytes): flags, ..., cgroup at the end.
    let mut args = [0u64; 11];
    args[0] = 0x2_0000_0000; // CLONE_INTO_CGROUP
    args[4] = libc::SIGCHLD as u64;
    args[10] = u64::try_from(fd).unwrap();
    // SAFETY: clone3 without a stack is a fork of this multi-threaded test process; the
    // child only makes async-signal-safe calls (it reads a file into a stack buffer,
    // writes it to the pipe and exits).
    let pid = unsafe { libc::syscall(libc::SYS_clone3, args.as_mut_ptr(), 88usize) };
    assert!(pid >= 0, "clone3: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let mut buf = [0u8; 512];
        // SAFETY: a NUL-terminated literal path.
        let f = unsafe { libc::open(c"/proc/self/cgroup".as_ptr(), libc::O_RDONLY) };
        // SAFETY: a stack buffer of the given size.
        let n = unsafe { libc::read(f, buf.as_mut_ptr().cast(), buf.len()) };
        // Negative: failed (errno), nothing to send.
        let n = usize::try_from(n).unwrap_or(0);
        // SAFETY: the first `n` bytes of the buffer, which read just filled.
        unsafe { libc::write(w, buf.as_ptr().cast(), n) };
        // SAFETY: ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: the write end of the pipe made above, not used after.
    unsafe { close(w) };
    let mut out = Vec::new();
    let mut f = std::fs::File::from(
        // SAFETY: `r` is our pipe's read end; the File takes ownership.
        unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r) },
    );
    std::io::Read::read_to_end(&mut f, &mut out).unwrap();
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(libc::pid_t::try_from(pid).unwrap(), std::ptr::null_mut(), 0) };
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains(cg.name()), "child's cgroup: {text}");
}

#[test]
fn stale_cgroups_of_a_dead_supervisor_are_reaped() {
    let Some(caps) = host_with(&[Controller::Memory]) else {
        return;
    };
    // A pid that just died: a child that exits at once, reaped.
    // SAFETY: the body makes no call at all.
    let dead = unsafe { fork_child(|_| 0) };
    dead.release();
    dead.wait();
    let name = format!("plugjail-{}-1", dead.pid);
    let bases = cgroup::bases(&caps);
    assert!(!bases.is_empty());
    let stale: Vec<PathBuf> = bases.iter().map(|b| b.join(&name)).collect();
    for d in &stale {
        std::fs::create_dir(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
    }
    // A process left inside, as a killed supervisor would leave its jail.
    let pause = |_| {
        loop {
            // SAFETY: no arguments; waits for a signal.
            unsafe { libc::pause() };
        }
    };
    // SAFETY: `pause` makes one raw syscall.
    let sleeper = unsafe { fork_child(pause) };
    std::fs::write(stale[0].join("cgroup.procs"), sleeper.pid.to_string()).unwrap();
    sleeper.release();
    let reaped = cgroup::reap_stale(&caps);
    let status = sleeper.wait();
    assert!(reaped.failed.is_empty(), "{:?}", reaped.failed);
    for d in &stale {
        assert!(
            reaped.removed.contains(d),
            "{} not reaped: {reaped:?}",
            d.display()
        );
    }
    assert_gone(&stale);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "{}",
        describe(status)
    );
    // Our own cgroups are never reaped.
    let l = Limits {
        memory: Some(64 * MIB),
        ..limits()
    };
    let cg = create(&l, &[], &caps);
    let again = cgroup::reap_stale(&caps);
    assert!(
        dirs(&cg)
            .iter()
            .all(|d| d.is_dir() && !again.removed.contains(d)),
        "{again:?}"
    );
    cg.remove().unwrap();
}

#[test]
fn unprivileged_without_cgroups_refuses_or_falls_back_to_rlimits() {
    // As root: run this very test again as uid 65534 (the part below).
    if nix::unistd::geteuid().is_root() {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "unprivileged_without_cgroups_refuses_or_falls_back_to_rlimits",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .uid(NOBODY)
            .gid(NOBODY)
            .env("PLUGJAIL_TEST_AS_NOBODY", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        eprintln!("as uid {NOBODY}:\n{text}");
        assert!(out.status.success(), "as uid {NOBODY}: {text}");
        assert!(
            text.contains("RLIMIT_AS enforced") || text.contains("n/a:"),
            "{text}"
        );
        return;
    }
    let caps = probe::cgroups();
    if cgroup::available(&caps).1.contains(&Controller::Memory) {
        // Not a skip: this user was given a delegated cgroup, and the limit tests cover it.
        eprintln!(
            "n/a: uid {} has a delegated cgroup here; RLIMIT_AS enforced only without one",
            nix::unistd::geteuid()
        );
        return;
    }
    let l = Limits {
        memory: Some(64 * MIB),
        pids: Some(16),
        cpu: Some(0.5),
        open_files: Some(32),
        ..limits()
    };
    let err = cgroup::prepare(&l, &[], Level::Required, &caps).unwrap_err();
    let msg = err.to_string();
    eprintln!("required: {msg}");
    assert!(matches!(err, CgroupError::Refused { .. }), "{err:?}");
    for part in [
        "cannot be enforced",
        "memory 64M",
        "pids 16",
        "cpu 0.5 cores",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }

    let plan = cgroup::prepare(&l, &[], Level::BestEffort, &caps).unwrap();
    assert_eq!(plan.backend, Backend::None);
    assert!(plan.steps.is_empty());
    let dropped: Vec<&str> = plan.dropped.iter().map(|d| d.what.as_str()).collect();
    assert_eq!(dropped, ["memory 64M", "cpu 0.5 cores", "pids 16"]);
    assert!(
        plan.dropped[0]
            .instead
            .as_deref()
            .unwrap()
            .starts_with("RLIMIT_AS")
    );
    assert_eq!(plan.rlimits.get(libc::RLIMIT_AS), Some(64 * MIB));
    assert_eq!(plan.rlimits.get(libc::RLIMIT_NOFILE), Some(32));
    let cg = plan.create().unwrap();
    let report = cg.report();
    assert_eq!(report.backend, Backend::None);
    assert!(report.rlimits.contains(&("RLIMIT_AS", 64 * MIB)));

    // The stand-in holds: with the rlimits applied, a 256 MiB mapping fails.
    let rl = *cg.rlimits();
    let size = usize::try_from(256 * MIB).unwrap();
    let mapper = move |_| {
        if rl.apply().is_err() {
            return 3;
        }
        // SAFETY: asks for a fresh anonymous mapping; only the result is looked at.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED && nix::errno::Errno::last_raw() == libc::ENOMEM {
            0
        } else {
            1
        }
    };
    // SAFETY: `mapper` makes raw syscalls only (setrlimit in `Rlimits::apply`, mmap).
    let child = unsafe { fork_child(mapper) };
    child.release();
    let status = child.wait();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{}",
        describe(status)
    );
    cg.remove().unwrap();
    eprintln!("RLIMIT_AS enforced: a 256 MiB mapping failed with ENOMEM");
}

#[test]
fn timings_stay_bounded() {
    // Creating and removing a jail cgroup is cheap: it is on every run's path.
    let Some(caps) = host_with(&[Controller::Memory]) else {
        return;
    };
    let l = Limits {
        memory: Some(64 * MIB),
        ..limits()
    };
    let t0 = Instant::now();
    for _ in 0..5 {
        create(&l, &[], &caps).remove().unwrap();
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

//! The command line's definitions (clap): shared by the `plugjail` binary, which parses
//! them, and `plugjail-gendocs` (crates/gendocs), which renders man pages and shell
//! completions from them at install time (docs/install.md). Not a library API.

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Run untrusted C/C++ plugins and programs in a Linux jail.
///
/// A profile (YAML) says what the jailed code may do: which files it sees, which syscalls
/// it may make, how much memory and CPU it gets. Start with `plugjail check` and
/// `plugjail explain` on a shipped profile (profiles/default.yaml), and `plugjail doctor`
/// to see what this machine can enforce.
#[derive(Parser)]
#[command(name = "plugjail", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Say less: no verdict summary line on stderr when a run ends normally (the program
    /// exited, the plugin session ended, the call was answered; a jail failure, a
    /// violation or a failed call is always reported), and no `ok` lines from `check`.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say more: after a run, its setup steps with their times on stderr (the same line
    /// PLUGJAIL_TIMING=1 prints).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Validate profiles; print every problem as FILE:LINE:COL with the offending line.
    ///
    /// A valid profile is then linted across its layers: a bind Landlock does not let the
    /// plugin use, a Landlock grant with nothing mounted under it, a host directory bound
    /// under a wider grant, a read-write directory the jail's user cannot write (as root
    /// the jail runs as uid 65534), serve rules held to load's argument conditions, TCP
    /// ports with `network: none`. Each is a warning on stderr with FILE:LINE:COL and a fix.
    /// Exit status: 0 when every profile is valid (warnings or not), 2 when any is invalid;
    /// with --strict, 1 when all are valid but some have warnings.
    Check {
        /// Profile files to check (YAML, `version: 1`).
        #[arg(required = true, value_name = "PROFILE")]
        profiles: Vec<PathBuf>,
        /// Warnings fail the check (exit status 1), for CI.
        #[arg(long, visible_alias = "deny-warnings")]
        strict: bool,
    },
    /// Show the effective policy of a profile (after `extends:`) in plain words.
    ///
    /// Lists what the jailed code may read, write, execute and connect to, the syscalls each
    /// seccomp phase allows (resolved per architecture), the limits, and what every
    /// `best_effort` setting may drop on a kernel that cannot enforce it.
    ///
    /// With --diff A B, compare two profiles instead, for reviewing a change: what B allows
    /// that A does not, what A allows that B does not, and what changed without widening
    /// either (mounts, Landlock rights and ports, syscalls per phase with their argument
    /// conditions, network, namespaces, limits, devices, environment, plugin pins,
    /// enforcement levels). Exit status then as for diff(1): 0 the same policy, 1 they
    /// differ, 2 a profile is invalid.
    Explain {
        #[arg(value_name = "PROFILE", required_unless_present = "diff")]
        profile: Option<PathBuf>,
        /// Compare profile A (before) with profile B (after).
        #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "profile")]
        diff: Option<Vec<PathBuf>>,
        /// Print JSON (with a `version` field for its format): the effective profile (valid
        /// profile input itself) and the resolved syscall tables; with --diff, the changes.
        #[arg(long)]
        json: bool,
    },
    /// Look up a syscall: a name's number on each architecture and the `@groups` that hold
    /// it, a number's name (decimal or 0x hex, as a verdict or kernel log shows it), or a
    /// group's members.
    ///
    /// Exit status: 0 found, 2 unknown (with the nearest name, if any).
    Syscall {
        #[arg(value_name = "NAME|NUMBER|@GROUP")]
        query: String,
        /// Print JSON (with a `version` field for its format).
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the profile format, for editors (see docs/profiles.md).
    ///
    /// With a flag, the schema of another document plugjail reads or writes instead.
    Schema {
        /// The host configuration's schema (see docs/host.md).
        #[arg(long, group = "document")]
        host: bool,
        /// The verdict's schema: the JSON of --report and --status-fd (docs/verdict.md).
        #[arg(long, group = "document")]
        verdict: bool,
        /// The schema of `plugjail doctor --json` (docs/doctor.md).
        #[arg(long, group = "document")]
        doctor: bool,
    },
    /// Report what this kernel and this user can enforce: user namespaces, Landlock,
    /// seccomp, cgroups.
    ///
    /// With --profile, also say, mechanism by mechanism, whether that profile would run here
    /// and what it would lose. Exit status: 0 if it would run (or no profile was given), 1 if
    /// it would be refused, 2 if the profile is invalid.
    Doctor {
        /// A profile to test against this machine.
        #[arg(long, value_name = "PROFILE")]
        profile: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run an executable in the jail (for example a plugin's test binary in CI).
    ///
    /// CMD is opened on the host before the jail is built and executed from that file
    /// descriptor inside, so its directory need not be visible in the jail. Exit status: the
    /// command's own; 128+N if killed by signal N; 125 if plugjail could not build the jail;
    /// 126/127 if the command cannot be executed / is not found. With --exit-status
    /// outcome, one status per outcome instead (see below).
    Exec {
        /// The profile to run under.
        #[arg(long, value_name = "PROFILE")]
        profile: PathBuf,
        /// Write the verdict (JSON) to this file. It is created (or truncated) before the
        /// jail is built: if it cannot be, plugjail exits 125 and runs nothing.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Write the verdict (JSON) to this inherited file descriptor.
        #[arg(long, value_name = "N")]
        status_fd: Option<RawFd>,
        /// What plugjail's exit status says. `program`: the command's own (128+N for
        /// signal N; an OOM kill or a timeout look like any SIGKILL, 137). `outcome`: one
        /// status per outcome: 0 exited 0, 1 exited non-zero, 5 timeout, 6 oom,
        /// 7 pids_limit, 8 seccomp_violation, 125/126/127 as always, 128+N killed by
        /// signal N for no other reason (docs/verdict.md).
        #[arg(long, value_enum, value_name = "WHAT", default_value_t = ExitStatus::Program)]
        exit_status: ExitStatus,
        /// The command and its arguments.
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
    /// Host one plugin for an application: the helper a host spawns (see docs/protocol.md).
    ///
    /// The plugin is verified (profile's sha256 allowlist), sealed into a memfd and loaded
    /// by plugjail-stub inside the jail. The host speaks the protocol to the stub directly
    /// over the channel: by default this process's stdin (frames from the host) and stdout
    /// (frames to the host), or the inherited descriptors given with --fds. plugjail
    /// enforces the profile's limits, including limits.call_time and limits.idle_time, and
    /// writes the verdict (JSON) at the end to --status-fd and/or --report, with one summary
    /// line on stderr. A host whose own deadline for a call passed sends SIGUSR1 (with
    /// sigqueue: the deadline in ms as the value): plugjail ends the jail, and the verdict
    /// is `timeout`, kind `host`. A host that pauses plugins passes --control-fd; one that
    /// places them passes --cpus. Exit status: 0 ok, 3 plugin_rejected, 4 protocol_violation,
    /// 5 timeout, 6 oom, 7 pids_limit, 8 seccomp_violation, 9 the stub exited early,
    /// 10 plugin_failed (it does not load, lacks its entry symbol, or its init() failed),
    /// 125 setup_failed, 128+N the plugin crashed with signal N.
    Serve {
        /// The profile to run under.
        #[arg(long, value_name = "PROFILE")]
        profile: PathBuf,
        /// The plugin (a shared object built against include/plugjail.h).
        #[arg(long, value_name = "SO")]
        plugin: PathBuf,
        /// The channel as two inherited descriptors: IN carries frames from the host, OUT
        /// frames to the host. Default: 0,1 (stdin, stdout).
        #[arg(long, value_name = "IN,OUT", value_parser = parse_fd_pair)]
        fds: Option<(RawFd, RawFd)>,
        /// Write the verdict (JSON) to this inherited file descriptor at the end.
        #[arg(long, value_name = "N")]
        status_fd: Option<RawFd>,
        /// Write the verdict (JSON) to this file at the end. It is created (or truncated)
        /// first: if it cannot be, plugjail exits 125 and starts no jail.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Pause and resume the jail on the host's word: N is an inherited SOCK_SEQPACKET
        /// socket. One-byte commands `P` (pause) and `R` (resume); each gets one reply,
        /// a pause only once the jail is really paused: status byte (0 done), errno
        /// (4 bytes, little-endian), text (docs/protocol.md). The jail is frozen in its
        /// cgroup (v2, or v1's freezer hierarchy), else (no cgroup) its processes are
        /// stopped with SIGSTOP. Closing the socket resumes a paused jail. The profile's
        /// deadlines keep running while it is paused.
        #[arg(long, value_name = "N")]
        control_fd: Option<RawFd>,
        /// Pin the jail to these CPUs (e.g. 0,2-3) with sched_setaffinity before it is
        /// built; a CPU plugjail may not run on is refused (setup_failed, step `cpus`).
        /// Placement, not a limit: a plugin allowed sched_setaffinity can widen it.
        #[arg(long, value_name = "LIST")]
        cpus: Option<String>,
        /// Take calls through shared memory: N is an inherited memfd the host created,
        /// laid out and sealed as docs/protocol.md ("Shared-memory calls") says. The stub
        /// maps it before the plugin loads and, after HELLO, takes CALLs from it and answers
        /// there; the pipe carries LOG frames. Refused (setup_failed, step `shm`) when the
        /// profile's seccomp phases lack futex or the memfd is not sealed against resizing.
        #[arg(long, value_name = "N")]
        shm_fd: Option<RawFd>,
    },
    /// Call one method of a plugin once, in the jail: for the shell and CI.
    ///
    /// The input is read from FILE (or stdin with `-`; none: empty input), the result
    /// bytes go to stdout, the plugin's log lines and output to stderr (escaped, one line
    /// per record, each marked `plugin[TAG]: `), and a one-line verdict summary to stderr
    /// (the full JSON with --report). Exit status: 0 the plugin
    /// answered; 1 the plugin answered with an error (reported on stderr and as
    /// `call_error` in the verdict, whose outcome stays `ok`: not a jail failure);
    /// otherwise as for `serve`: 3 plugin_rejected, 4 protocol_violation, 5 timeout, 6 oom,
    /// 7 pids_limit, 8 seccomp_violation, 9 the stub exited early, 10 plugin_failed,
    /// 125 setup_failed, 128+N the plugin crashed with signal N.
    Call {
        /// The profile to run under.
        #[arg(long, value_name = "PROFILE")]
        profile: PathBuf,
        /// The plugin (a shared object built against include/plugjail.h).
        #[arg(long, value_name = "SO")]
        plugin: PathBuf,
        /// The method to call (the plugin lists its methods in its HELLO).
        #[arg(long, value_name = "M")]
        method: String,
        /// Where the input comes from: a file, or `-` for stdin. Default: empty input.
        #[arg(long, value_name = "FILE|-")]
        input: Option<PathBuf>,
        /// Write the verdict (JSON) to this file. It is created (or truncated) first: if it
        /// cannot be, plugjail exits 125 and starts no jail.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Host many plugins for an application in any language: warm pools of jails, calls in
    /// parallel, cancellation, events (see docs/host-protocol.md).
    ///
    /// The protocol runs on stdin (frames from the application) and stdout (frames to it;
    /// nothing else is written there), or with --listen on a unix socket (mode 0600, for
    /// this user and root). Human text goes to stderr. Exit status: 0 after SHUTDOWN, the
    /// end of stdin, SIGTERM, SIGINT or SIGHUP (every jail ended, every call answered);
    /// 2 the configuration is invalid; 125 the host could not start.
    Host {
        /// The host configuration (YAML): the plugins, their profiles and pools.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Serve a unix stream socket created at PATH instead of stdin/stdout.
        #[arg(long, value_name = "PATH")]
        listen: Option<PathBuf>,
    },
}

/// `exec --exit-status`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExitStatus {
    Program,
    Outcome,
}

/// `IN,OUT` descriptor numbers.
fn parse_fd_pair(s: &str) -> Result<(RawFd, RawFd), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?}: expected IN,OUT (two descriptor numbers)"))?;
    let n = |v: &str| {
        v.trim()
            .parse::<RawFd>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{v:?} is not a descriptor number"))
    };
    Ok((n(a)?, n(b)?))
}

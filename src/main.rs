//! The `plugjail` command line: check and explain profiles, report what this machine can
//! enforce, and run programs and plugins in a jail.

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use plugjail::cli;

/// Run untrusted C/C++ plugins and programs in a Linux jail.
///
/// A profile (YAML) says what the jailed code may do: which files it sees, which syscalls
/// it may make, how much memory and CPU it gets. Start with `plugjail check` and
/// `plugjail explain` on a shipped profile (profiles/default.yaml), and `plugjail doctor`
/// to see what this machine can enforce.
#[derive(Parser)]
#[command(name = "plugjail", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate profiles; print every problem as FILE:LINE:COL with the offending line.
    ///
    /// Exits 0 when every profile is valid, 2 when any is not.
    Check {
        /// Profile files to check (YAML, `version: 1`).
        #[arg(required = true, value_name = "PROFILE")]
        profiles: Vec<PathBuf>,
    },
    /// Show the effective policy of a profile (after `extends:`) in plain words.
    ///
    /// Lists what the jailed code may read, write, execute and connect to, the syscalls each
    /// seccomp phase allows (resolved per architecture), the limits, and what every
    /// `best_effort` setting may drop on a kernel that cannot enforce it.
    Explain {
        #[arg(value_name = "PROFILE")]
        profile: PathBuf,
        /// Print JSON: the effective profile (valid profile input itself) and the resolved
        /// syscall tables.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the profile format, for editors (see docs/profiles.md).
    Schema,
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
    /// 126/127 if the command cannot be executed / is not found.
    Exec {
        /// The profile to run under.
        #[arg(long, value_name = "PROFILE")]
        profile: PathBuf,
        /// Write the verdict (JSON) to this file.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Write the verdict (JSON) to this inherited file descriptor.
        #[arg(long, value_name = "N")]
        status_fd: Option<RawFd>,
        /// The command and its arguments.
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { profiles } => cli::check(&profiles),
        Command::Explain { profile, json } => cli::explain(&profile, json),
        Command::Schema => cli::schema(),
        Command::Doctor { profile, json } => plugjail::doctor::run(profile.as_deref(), json),
        Command::Exec {
            profile,
            report,
            status_fd,
            command,
        } => ExitCode::from(plugjail::exec::run(plugjail::exec::ExecOptions {
            profile,
            report,
            status_fd,
            command,
        })),
    }
}

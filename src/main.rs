//! The `plugjail` command line: check and explain profiles, report what this machine can
//! enforce, and run programs and plugins in a jail. The arguments are defined in
//! `plugjail::cli::args`.

use std::process::ExitCode;

use clap::Parser;

use plugjail::cli;
use plugjail::cli::args::{Cli, Command, ExitStatus};

fn main() -> ExitCode {
    plugjail::timing::start();
    let cli = Cli::parse();
    if cli.verbose && std::env::var_os("PLUGJAIL_TIMING").is_none_or(|v| v != "1") {
        // -v is PLUGJAIL_TIMING=1 given on the command line: the clock starts after the
        // arguments are parsed instead of before. The jail never sees the variable (its
        // environment is the profile's).
        // SAFETY: main is still single-threaded here; nothing reads the environment
        // concurrently.
        unsafe { std::env::set_var("PLUGJAIL_TIMING", "1") };
        plugjail::timing::start();
    }
    cli::set_quiet(cli.quiet);
    plugjail::timing::mark("cli");
    let code = match cli.command {
        Command::Check { profiles, strict } => cli::check(&profiles, strict, cli.quiet),
        Command::Explain {
            profile,
            diff,
            json,
        } => match (diff.as_deref(), profile) {
            (Some([a, b]), _) => cli::explain_diff(a, b, json),
            (_, Some(profile)) => cli::explain(&profile, json),
            // clap requires a profile unless --diff is given, and --diff takes two.
            _ => std::process::ExitCode::from(cli::EXIT_INVALID),
        },
        Command::Syscall { query, json } => cli::syscall(&query, json),
        Command::Schema {
            host,
            verdict,
            doctor,
        } => cli::schema(match (host, verdict, doctor) {
            (true, _, _) => cli::SchemaOf::Host,
            (_, true, _) => cli::SchemaOf::Verdict,
            (_, _, true) => cli::SchemaOf::Doctor,
            _ => cli::SchemaOf::Profile,
        }),
        Command::Doctor { profile, json } => plugjail::doctor::run(profile.as_deref(), json),
        Command::Exec {
            profile,
            report,
            status_fd,
            exit_status,
            command,
        } => ExitCode::from(plugjail::exec::run(plugjail::exec::ExecOptions {
            profile,
            report,
            status_fd,
            exit_status: match exit_status {
                ExitStatus::Program => plugjail::exec::ExitStatusMode::Program,
                ExitStatus::Outcome => plugjail::exec::ExitStatusMode::Outcome,
            },
            command,
        })),
        Command::Serve {
            profile,
            plugin,
            fds,
            status_fd,
            report,
            control_fd,
            cpus,
            shm_fd,
        } => ExitCode::from(plugjail::plugin_mode::serve::run(
            plugjail::plugin_mode::serve::ServeOptions {
                profile,
                plugin,
                fds,
                status_fd,
                report,
                control_fd,
                cpus,
                shm_fd,
            },
        )),
        Command::Call {
            profile,
            plugin,
            method,
            input,
            report,
        } => ExitCode::from(plugjail::plugin_mode::call::run(
            plugjail::plugin_mode::call::CallOptions {
                profile,
                plugin,
                method,
                input,
                report,
            },
        )),
        Command::Host { config, listen } => {
            ExitCode::from(plugjail::host::wire::run(&plugjail::host::wire::Options {
                config,
                listen,
            }))
        }
    };
    plugjail::timing::report();
    code
}

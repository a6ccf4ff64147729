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
    plugjail::timing::mark("cli");
    let code = match cli.command {
        Command::Check { profiles } => cli::check(&profiles),
        Command::Explain { profile, json } => cli::explain(&profile, json),
        Command::Schema { host } => cli::schema(host),
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

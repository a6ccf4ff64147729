//! The profile subcommands: `check` (profiles and host configurations), `explain`,
//! `schema`.

// The CLI's argument definitions, for the binary and the man page generator; not API.
#[doc(hidden)]
pub mod args;
mod diff;
mod explain;
mod host_schema;
mod report_schema;
mod schema;
mod syscall;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::host::config::read as host_config;
use crate::profile::lint::JailUser;
use crate::profile::{self, Document};

use explain::{explain_json, explain_text};
use host_schema::host_schema;
use schema::profile_schema;

/// Exit status of `check` when a profile is invalid (clap uses 2 for bad usage too: both
/// mean "fix what you wrote").
pub const EXIT_INVALID: u8 = 2;

/// Exit status of `check --strict` when every file is valid but some have warnings.
pub const EXIT_WARNINGS: u8 = 1;

/// `plugjail check FILE... [--strict]`: every error of every profile or host
/// configuration, the lint's warnings for each valid profile, then one summary line each.
pub fn check(paths: &[PathBuf], strict: bool, quiet: bool) -> ExitCode {
    let users = jail_users();
    let mut failed = 0;
    let mut warned = 0;
    for path in paths {
        // Which of the two a file is shows in its tree: parsed once, read as either.
        let doc = Document::read(path, "profile");
        let checked = match &doc.root {
            Some(root) if host_config::is_host_config(root) => {
                host_config::from_document(doc).map(|_| None)
            }
            _ => doc.into_linted(&users).map(|(_, w)| Some(w)),
        };
        match checked {
            Ok(warnings) => {
                let n = warnings.as_ref().map_or(0, |w| w.diagnostics.len());
                if n == 0 {
                    if !quiet {
                        println!("{}: ok", path.display());
                    }
                } else {
                    warned += 1;
                    if let Some(w) = warnings {
                        eprint!("{w}");
                    }
                    eprintln!();
                    println!("{}: ok, {n} warning{}", path.display(), plural(n));
                }
            }
            Err(errors) => {
                failed += 1;
                eprint!("{errors}");
                let n = errors.diagnostics.len();
                eprintln!("\n{}: {n} error{}\n", path.display(), plural(n));
            }
        }
    }
    if failed > 0 {
        ExitCode::from(EXIT_INVALID)
    } else if strict && warned > 0 {
        ExitCode::from(EXIT_WARNINGS)
    } else {
        ExitCode::SUCCESS
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Who the jail would run as on the host if this user started it: root's jails run as
/// nobody (crate::jail::idmap), anyone else's as themselves.
fn jail_users() -> Vec<JailUser> {
    let (euid, egid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    if euid == 0 {
        let id = crate::jail::idmap::ROOT_JAIL_ID;
        vec![JailUser {
            uid: id,
            gid: id,
            when: "when plugjail runs as root".into(),
        }]
    } else {
        vec![JailUser {
            uid: euid,
            gid: egid,
            when: "when you run plugjail".into(),
        }]
    }
}

/// `-q/--quiet` for runs: no verdict summary line when a run ends normally.
pub fn set_quiet(quiet: bool) {
    crate::verdict::set_quiet(quiet);
}

/// `plugjail explain PROFILE [--json]`.
pub fn explain(path: &Path, json: bool) -> ExitCode {
    let profile = match profile::load(path) {
        Ok(p) => p,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let out = if json {
        let mut text = serde_json::to_string_pretty(&explain_json(&profile))
            .expect("a profile always serializes");
        text.push('\n');
        text
    } else {
        explain_text(path, &profile)
    };
    print_all(&out)
}

/// `plugjail explain --diff A B [--json]`: exit 0 when the policies are the same, 1 when
/// they differ, 2 when either profile is invalid (diff(1)'s convention).
pub fn explain_diff(a: &Path, b: &Path, json: bool) -> ExitCode {
    let (pa, pb) = (profile::load(a), profile::load(b));
    let (pa, pb) = match (pa, pb) {
        (Ok(pa), Ok(pb)) => (pa, pb),
        (ra, rb) => {
            for errors in [ra.err(), rb.err()].into_iter().flatten() {
                eprint!("{errors}");
            }
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let d = diff::diff(&pa, &pb);
    let out = if json {
        let mut text = serde_json::to_string_pretty(&diff::diff_json(a, b, &d))
            .expect("a diff always serializes");
        text.push('\n');
        text
    } else {
        diff::diff_text(a, b, &d)
    };
    match print_all(&out) {
        status if status != ExitCode::SUCCESS => status,
        _ if d.is_empty() => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

/// `plugjail syscall QUERY [--json]`: exit 0 when found, 2 when unknown.
pub fn syscall(query: &str, json: bool) -> ExitCode {
    match syscall::lookup(query) {
        Ok(v) if json => {
            let text = serde_json::to_string_pretty(&v).expect("json always serializes");
            print_all(&(text + "\n"))
        }
        Ok(v) => print_all(&syscall::text(&v)),
        Err(e) => {
            eprintln!("plugjail: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// Which document `plugjail schema` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaOf {
    Profile,
    Host,
    Verdict,
    Doctor,
}

/// `plugjail schema [--host | --verdict | --doctor]`.
pub fn schema(of: SchemaOf) -> ExitCode {
    let schema = match of {
        SchemaOf::Profile => profile_schema(),
        SchemaOf::Host => host_schema(),
        SchemaOf::Verdict => report_schema::verdict_schema(),
        SchemaOf::Doctor => report_schema::doctor_schema(),
    };
    let text = serde_json::to_string_pretty(&schema).expect("the schema always serializes");
    print_all(&(text + "\n"))
}

/// Prints to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print_all(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plugjail: cannot write output: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;

//! plugjail-gendocs: renders plugjail's man pages and shell completions from the clap
//! definitions the `plugjail` binary parses (`plugjail::cli::args`), so they can never
//! drift from `--help`. Run by scripts/install.sh and scripts/deb.sh; not installed.
//!
//! ```text
//! plugjail-gendocs man DIR PREFIX    DIR/plugjail.1 and DIR/plugjail-SUBCOMMAND.1
//! plugjail-gendocs completion SHELL  the completion script on stdout (bash, zsh, fish)
//! ```
//!
//! PREFIX is where plugjail is installed (`/usr`, `/usr/local`): plugjail.1's FILES
//! section names the stub and the profiles there.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use plugjail::cli::args::Cli;

const USAGE: &str = "usage: plugjail-gendocs man DIR PREFIX | completion bash|zsh|fish";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let done = match args.as_slice() {
        ["man", dir, prefix] => man(Path::new(dir), prefix),
        ["completion", shell] => completion(shell),
        _ => Err(USAGE.to_string()),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plugjail-gendocs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every man page: plugjail.1, then one per subcommand (plugjail-call.1, …).
fn man(dir: &Path, prefix: &str) -> Result<(), String> {
    let err = |what: &str, e: std::io::Error| format!("{what} in {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(|e| err("mkdir", e))?;
    clap_mangen::generate_to(Cli::command(), dir).map_err(|e| err("writing man pages", e))?;
    // The top page again, with where the installed pieces are.
    let page = dir.join("plugjail.1");
    let mut text = Vec::new();
    clap_mangen::Man::new(Cli::command().disable_help_subcommand(true))
        .render(&mut text)
        .map_err(|e| err("rendering plugjail.1", e))?;
    text.extend_from_slice(files_section(prefix).as_bytes());
    std::fs::write(&page, text).map_err(|e| err("writing plugjail.1", e))
}

/// plugjail.1's FILES and SEE ALSO sections (roff).
fn files_section(prefix: &str) -> String {
    let prefix = roff_escape(prefix.trim_end_matches('/'));
    let file = |path: &str, what: &str| format!(".TP\n\\fI{prefix}{path}\\fR\n{what}\n");
    let mut s = String::from(".SH FILES\n");
    s += &file(
        "/libexec/plugjail/plugjail\\-stub",
        "The program plugjail runs inside the jail to host a plugin. plugjail looks for it \
         next to its own executable first, then in ../libexec/plugjail/ from there.",
    );
    s += &file(
        "/share/plugjail/profiles/",
        "The shipped profiles (default.yaml for a typical plugin, and the others the \
         README lists). Pass one by path to \\-\\-profile, or extend one from your own.",
    );
    s += &file(
        "/include/plugjail.h",
        "The C ABI a plugin is built against; include/plugjail/ holds the host clients.",
    );
    s += &file(
        "/lib/pkgconfig/plugjail.pc",
        "pkg\\-config metadata (plugjail, plugjail\\-host); \
         lib/cmake/plugjail/ holds the CMake package (find_package(plugjail CONFIG)).",
    );
    s += ".SH SEE ALSO\n\\fBplugjail\\-check\\fR(1), \\fBplugjail\\-call\\fR(1), \
          \\fBplugjail\\-serve\\fR(1), \\fBplugjail\\-exec\\fR(1), \\fBplugjail\\-host\\fR(1), \
          \\fBplugjail\\-doctor\\fR(1)\n";
    s
}

/// A path for roff text: backslashes doubled, hyphens as \-.
fn roff_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('-', "\\-")
}

/// One shell's completion script, on stdout.
fn completion(shell: &str) -> Result<(), String> {
    let shell = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        _ => {
            return Err(format!(
                "{shell:?}: not a shell this knows (bash, zsh, fish)"
            ));
        }
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "plugjail", &mut out);
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| format!("writing the completion: {e}"))
}

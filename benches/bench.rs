//! The plugjail benchmark program (`cargo bench --bench bench -- [--quick] [--json FILE]`;
//! scripts/bench.sh builds and runs it). See docs/performance.md.

#[path = "suite/mod.rs"]
mod suite;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: bench [--quick] [--json FILE] [--cold-reps N] [--cli-reps N] \
                     [--audio-secs S] [--shm-only]";

fn main() -> ExitCode {
    let mut opts = suite::Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--json" => match args.next() {
                Some(f) => opts.json = Some(PathBuf::from(f)),
                None => return usage(),
            },
            "--cold-reps" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => opts.cold_reps = n,
                None => return usage(),
            },
            "--cli-reps" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => opts.cli_reps = n,
                None => return usage(),
            },
            "--audio-secs" => match args.next().and_then(|n| n.parse().ok()) {
                Some(s) => opts.audio_secs = Some(s),
                None => return usage(),
            },
            "--shm-only" => opts.shm_only = true,
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            _ => return usage(),
        }
    }
    // scripts/bench.sh points at the binaries as shipped (plugjail statically linked).
    let plugjail = std::env::var_os("PLUGJAIL_BENCH_BINS")
        .map(|dir| PathBuf::from(dir).join("plugjail"))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_plugjail")));
    let bins = suite::Binaries {
        stub: plugjail.with_file_name("plugjail-stub"),
        plugjail,
        root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        out: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench"),
    };
    match suite::run(&bins, &opts) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

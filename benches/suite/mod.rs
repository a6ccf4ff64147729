//! The plugjail benchmark: cold start, warm call round trips, throughput and memory of
//! plugjail against an unisolated floor and the peers (unshare, bwrap), measured
//! side by side in one run and reported as ratios (docs/performance.md).
//!
//! Shared by benches/bench.rs (the program scripts/bench.sh runs) and
//! tests/bench_smoke.rs (a quick run that checks the JSON, never the speed).

mod build;
mod calls;
mod cli;
mod cold;
mod host;
mod launch;
mod memory;
mod report;
mod shm;
mod stats;
mod wire;

use std::path::{Path, PathBuf};

use plugjail::protocol::ChannelError;
use plugjail::seccomp::{SeccompPhase, compile};

use launch::{Env, Runner};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: &'static str,
        source: std::io::Error,
    },
    #[error("{what} failed: {status}")]
    Exit { what: &'static str, status: String },
    #[error("{runner} session: {source}")]
    Channel {
        runner: &'static str,
        source: ChannelError,
    },
    #[error("{who}: {what}")]
    Cli { who: String, what: String },
    #[error("{runner} session: wrong {what}")]
    Wrong {
        runner: &'static str,
        what: &'static str,
    },
    #[error("plugjail session: {source}")]
    Session {
        source: plugjail::session::SessionError,
    },
    #[error("plugjail call: {source}")]
    Call { source: plugjail::CallError },
    #[error("plugin host: {source}")]
    Host { source: plugjail::host::HostError },
    #[error("call through the plugin host: {source}")]
    HostCall {
        source: plugjail::host::HostCallError,
    },
    #[error("plugjail verdict {outcome}: {message}")]
    Verdict { outcome: String, message: String },
    #[error("plugin: {source}")]
    Plugin {
        source: plugjail::plugin_file::PluginFileError,
    },
    #[error("{path}: the profile is not valid")]
    Profile { path: PathBuf },
    #[error("{path}: {what}: {source}")]
    Seccomp {
        path: PathBuf,
        what: &'static str,
        source: plugjail::seccomp::SeccompError,
    },
    #[error("{path}: cannot write the JSON report: {source}")]
    Json {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A few repetitions only: for the CI smoke (shape of the output, not the numbers).
    pub quick: bool,
    pub json: Option<PathBuf>,
    /// Cold-start rounds (each starts every runner once); 0 for the mode's default.
    pub cold_reps: usize,
    /// CLI cold-start rounds (each runs every command once in each mode); 0 for the
    /// mode's default.
    pub cli_reps: usize,
    /// Seconds per contender of the shared-memory section's audio-style run (default 10,
    /// quick 0.5).
    pub audio_secs: Option<f64>,
    /// Run the shared-memory section only (benches/suite/shm.rs).
    pub shm_only: bool,
}

/// The binaries under test, from the cargo build that built the bench (or the test).
pub struct Binaries {
    pub stub: PathBuf,
    pub plugjail: PathBuf,
    pub root: PathBuf,
    /// Scratch directory for the built plugin and floor program.
    pub out: PathBuf,
}

/// Runs everything; prints the table and writes the JSON file if asked. Returns the JSON.
pub fn run(bins: &Binaries, opts: &Options) -> Result<serde_json::Value, BenchError> {
    let built = build::build(&bins.root, &bins.out)?;
    let profile = bins.root.join("profiles/default.yaml");
    let prof = plugjail::profile::load(&profile).map_err(|_| BenchError::Profile {
        path: profile.clone(),
    })?;
    // The floor with the serve phase's rules, installed before exec: unlisted syscalls are
    // allowed (and logged; only the stub's start-up makes any), so a call runs through the
    // same rule search as in the jail, without a jail around it.
    let logged = plugjail::profile::Seccomp {
        default_action: plugjail::profile::Action::Log,
        ..prof.seccomp.clone()
    };
    let serve =
        compile(&logged, SeccompPhase::Serve, None).map_err(|source| BenchError::Seccomp {
            path: profile.clone(),
            what: "serve-phase filter",
            source,
        })?;
    let env = Env {
        stub: bins.stub.clone(),
        plugjail: bins.plugjail.clone(),
        plugin: built.plugin.clone(),
        profile,
        cap: u32::try_from(prof.limits.max_message).unwrap_or(u32::MAX),
        serve_filter: serve.bpf().to_vec(),
    };
    let shm_plan = shm::Plan::new(opts.quick, opts.audio_secs);
    if opts.shm_only {
        let json = serde_json::json!({
            "schema": "plugjail-bench/1",
            "mode": if opts.quick { "quick" } else { "full" },
            "shm": shm::run(&env, &built.gain, &bins.out, &shm_plan)?,
        });
        if let Some(path) = &opts.json {
            write_json(path, &json)?;
        }
        return Ok(json);
    }

    // A runner that cannot start here (a peer not installed, plugjail serve not built) is
    // left out with the reason; everything else is still measured.
    let mut unavailable: Vec<(String, String)> = Vec::new();
    let mut usable = Vec::new();
    for runner in [
        Runner::Floor,
        Runner::Unshare,
        Runner::Bwrap,
        Runner::Plugjail,
    ] {
        match launch::start(&env, runner).and_then(|l| l.finish()) {
            Ok(()) => usable.push(runner),
            Err(e) => unavailable.push((runner.name().into(), e.to_string())),
        }
    }
    let cli_env = cli::prepare(&built, &bins.plugjail, &env.profile, &bins.out)?;
    let cli_probed = cli::probe(&cli_env);
    unavailable.extend(cli_probed.unavailable);
    for (name, why) in &unavailable {
        eprintln!("bench: {name} left out: {why}");
    }

    let (warmup, reps, rounds) = match (opts.quick, opts.cold_reps) {
        (true, 0) => (1, 5, 2),
        (true, n) => (1, n, 2),
        (false, 0) => (5, 150, 12),
        (false, n) => (5, n, 12),
    };
    let cold = cold::run(&env, &usable, warmup, reps)?;
    let cli_reps = match (opts.quick, opts.cli_reps) {
        (true, 0) => 5,
        (false, 0) => 100,
        (_, n) => n,
    };
    let cli = cli::run(&cli_env, &cli_probed.usable, warmup, cli_reps)?;

    let mut lives = Vec::new();
    for runner in [Runner::Floor, Runner::Filtered, Runner::Plugjail] {
        if runner == Runner::Plugjail && !usable.contains(&runner) {
            continue;
        }
        lives.push(launch::start(&env, runner)?);
    }
    let calls = calls::run(&built.floor, env.cap, &mut lives, rounds, opts.quick)?;
    for p in calls::PLACEMENTS {
        if !calls.cpus.contains_key(&p) {
            unavailable.push((p.name().into(), "this process may use one CPU only".into()));
        }
    }
    let mem = memory::measure(&built, &lives)?;
    for live in lives {
        live.finish()?;
    }

    // The plugin host, once no other session runs: its memory figures count this
    // process's `plugjail serve` children.
    let host = if usable.contains(&Runner::Plugjail) {
        let floor_cold = cli_probed
            .usable
            .contains(&(cli::Mode::Root, cli::Contender::Host))
            .then_some(&cli_env);
        if floor_cold.is_none() {
            unavailable.push((
                format!("{}.floor_cold", host::WARM_SECTION),
                "the CLI bench's unjailed host (floor call) did not run here".into(),
            ));
        }
        let samples = host::run(&env, &built.floor, floor_cold, host::Plan::new(opts.quick))?;
        unavailable.extend(samples.unavailable.iter().cloned());
        Some(samples)
    } else {
        for section in host::SECTIONS {
            unavailable.push((section.into(), "plugjail sessions did not start".into()));
        }
        None
    };

    // Shared-memory calls (issue 18), once the other sessions are gone.
    let shm = shm::run(&env, &built.gain, &bins.out, &shm_plan)?;

    let mut json = report::json(&report::Inputs {
        quick: opts.quick,
        root: &bins.root,
        unavailable: &unavailable,
        cold: &cold,
        cli: &cli,
        calls: &calls,
        memory: &mem,
        host: host.as_ref(),
    });
    json["shm"] = shm;
    println!("{}", report::table(&json));
    if let Some(path) = &opts.json {
        write_json(path, &json)?;
    }
    Ok(json)
}

fn write_json(path: &Path, json: &serde_json::Value) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(json).unwrap_or_default() + "\n";
    std::fs::write(path, text).map_err(|source| BenchError::Json {
        path: path.to_path_buf(),
        source,
    })
}

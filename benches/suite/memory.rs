//! Memory: peak resident sets (VmHWM) read from /proc at the end of the warm sessions,
//! after the 1 MiB calls, so every buffer has reached its largest size.

use std::process::Command;

use super::BenchError;
use super::build::Built;
use super::launch::{Live, Runner, peak_rss};

#[derive(Debug, Default)]
pub struct Memory {
    /// plugjail's own process outside the jail (None when plugjail was not measured).
    pub supervisor: Option<u64>,
    /// The stub in plugjail's jail.
    pub stub: Option<u64>,
    /// The same stub with no jail.
    pub floor_stub: Option<u64>,
    /// A minimal C host that dlopens the plugin and makes one call: the plugin's own cost.
    pub plugin_host: Option<u64>,
}

pub fn measure(built: &Built, lives: &[Live]) -> Result<Memory, BenchError> {
    let mut m = Memory::default();
    for live in lives {
        let stub = live.stub_pid().and_then(peak_rss);
        match live.runner() {
            Runner::Plugjail => {
                m.supervisor = live.runner_pid().and_then(peak_rss);
                m.stub = stub;
            }
            Runner::Floor => m.floor_stub = stub,
            _ => {}
        }
    }
    let out = Command::new(&built.floor)
        .arg("dlopen")
        .arg(&built.plugin)
        .output()
        .map_err(|source| BenchError::Spawn {
            program: "floor dlopen",
            source,
        })?;
    if !out.status.success() {
        return Err(BenchError::Exit {
            what: "floor dlopen",
            status: out.status.to_string(),
        });
    }
    m.plugin_host = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<u64>()
        .ok()
        .map(|kib| kib * 1024);
    Ok(m)
}

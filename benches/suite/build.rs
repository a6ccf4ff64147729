//! Builds what the bench runs besides the crate's binaries: the trivial plugin
//! (examples/plugins/hello.cpp), the floor program (benches/floor/floor.c) and the audio-style
//! plugin of the shared-memory section (benches/plugins/gain.cpp).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::BenchError;

pub struct Built {
    pub plugin: PathBuf,
    pub floor: PathBuf,
    /// benches/plugins/gain.cpp: echo, and a gain over a stereo float buffer (the
    /// shared-memory section, `shm.rs`).
    pub gain: PathBuf,
}

pub fn build(root: &Path, out: &Path) -> Result<Built, BenchError> {
    std::fs::create_dir_all(out).map_err(|source| BenchError::Io {
        what: "creating the bench build directory",
        source,
    })?;
    let include = root.join("include");
    let plugin = out.join("hello.so");
    compile(
        "c++",
        &["-std=c++17", "-O2", "-shared", "-fPIC"],
        &include,
        &root.join("examples/plugins/hello.cpp"),
        &plugin,
        &[],
    )?;
    let floor = out.join("floor");
    compile(
        "cc",
        &["-O2"],
        &include,
        &root.join("benches/floor/floor.c"),
        &floor,
        &["-ldl"],
    )?;
    let gain = out.join("gain.so");
    compile(
        "c++",
        &["-std=c++17", "-O2", "-shared", "-fPIC"],
        &include,
        &root.join("benches/plugins/gain.cpp"),
        &gain,
        &[],
    )?;
    Ok(Built {
        plugin,
        floor,
        gain,
    })
}

fn compile(
    cc: &'static str,
    flags: &[&str],
    include: &Path,
    src: &Path,
    out: &Path,
    libs: &[&str],
) -> Result<(), BenchError> {
    let status = Command::new(cc)
        .args(flags)
        .arg("-I")
        .arg(include)
        .arg("-o")
        .arg(out)
        .arg(src)
        .args(libs)
        .status()
        .map_err(|source| BenchError::Spawn {
            program: cc,
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(BenchError::Exit {
            what: cc,
            status: status.to_string(),
        })
    }
}

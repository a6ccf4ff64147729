//! TEMPORARY: a minimal reader of the host configuration until `crate::host::config::load`
//! lands on main; removed at that merge. Reads only `version`, and per plugin `id`,
//! `plugin`, `profile` and `pool` (`warm`, `max`, `queue`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::host::{HostConfig, PluginConfig, PoolConfig};

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code)]
    version: u32,
    plugins: Vec<Plugin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Plugin {
    id: String,
    plugin: PathBuf,
    profile: PathBuf,
    #[serde(default)]
    pool: Option<Pool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pool {
    warm: Option<usize>,
    max: Option<usize>,
    queue: Option<usize>,
}

pub fn load(path: &Path) -> Result<HostConfig, ShimError> {
    let text = std::fs::read_to_string(path).map_err(|source| ShimError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file: File = serde_saphyr::from_str(&text).map_err(|e| ShimError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let plugins = file
        .plugins
        .into_iter()
        .map(|p| {
            let mut c = PluginConfig::new(&p.id, base.join(p.plugin), base.join(p.profile));
            if let Some(pool) = p.pool {
                let d = PoolConfig::default();
                c.pool.warm = pool.warm.unwrap_or(d.warm);
                c.pool.max = pool.max.unwrap_or(d.max);
                c.pool.queue = pool.queue.unwrap_or(d.queue);
            }
            c
        })
        .collect();
    Ok(HostConfig { plugins })
}

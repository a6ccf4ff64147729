//! Parsers for /proc/self/cgroup and /proc/self/mountinfo, and the pure decisions made
//! from them (the mode, where the own cgroup lives). No I/O here, so tests feed fixed text.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::CgroupMode;
use crate::probe::Error;

/// One line of /proc/self/cgroup: `ID:CONTROLLERS:PATH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnCgroup {
    /// Hierarchy id; 0 is the cgroup v2 (unified) hierarchy.
    pub hierarchy: u32,
    /// Controllers bound to the hierarchy (`memory`, `cpu`, `name=systemd`); empty for v2.
    pub controllers: Vec<String>,
    /// The process's cgroup, relative to the hierarchy root (`/` is the root cgroup).
    pub path: String,
}

/// The parts of one /proc/self/mountinfo line that locate a cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory of the filesystem mounted here (for cgroups: the cgroup path that
    /// appears at the mount point; `/` unless a sub-cgroup was bind-mounted).
    pub root: String,
    pub mount_point: PathBuf,
    pub fstype: String,
    /// Filesystem options after the separator; for cgroup v1 they name the controllers.
    pub super_options: Vec<String>,
}

/// Every v1 controller the kernel knows; a v1 mount naming any of them makes the system
/// hybrid (or legacy). `name=systemd` alone does not: it binds no controller.
const V1_CONTROLLERS: [&str; 14] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// Reads /proc/self/cgroup; lines that do not have the `ID:CONTROLLERS:PATH` shape are
/// skipped (the path itself may contain `:`).
pub fn proc_cgroup(text: &str) -> Vec<OwnCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            if !path.starts_with('/') {
                return None;
            }
            Some(OwnCgroup {
                hierarchy,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// Reads one mountinfo line:
/// `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`.
pub fn mountinfo_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let mut left = before.split(' ');
    let root = unescape(left.nth(3)?);
    let mount_point = PathBuf::from(unescape(left.next()?));
    let mut right = after.split(' ');
    let fstype = right.next()?.to_owned();
    let _source = right.next()?;
    let super_options = right
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_owned)
        .collect();
    Some(Mount {
        root,
        mount_point,
        fstype,
        super_options,
    })
}

pub fn mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(mountinfo_line).collect()
}

/// mountinfo writes space, tab, newline and backslash as three-digit octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Mount {
    pub fn is_v2(&self) -> bool {
        self.fstype == "cgroup2"
    }

    /// A cgroup v1 mount carrying this controller.
    pub fn has_v1(&self, controller: &str) -> bool {
        self.fstype == "cgroup" && self.super_options.iter().any(|o| o == controller)
    }
}

/// v1 controller mounts make the system v1 (hybrid or legacy); otherwise a cgroup2 mount
/// makes it v2; otherwise there are no cgroups to use.
pub fn mode(mounts: &[Mount]) -> CgroupMode {
    if mounts
        .iter()
        .any(|m| V1_CONTROLLERS.iter().any(|c| m.has_v1(c)))
    {
        CgroupMode::V1Hybrid
    } else if mounts.iter().any(Mount::is_v2) {
        CgroupMode::V2
    } else {
        CgroupMode::None
    }
}

/// The directory of cgroup `path` under `mount`, when the mount shows that part of the
/// hierarchy (a bind mount of a sub-cgroup, or a cgroup namespace, shows only a subtree).
pub fn cgroup_dir(mount: &Mount, path: &str) -> Result<PathBuf, Error> {
    let root = mount.root.trim_end_matches('/');
    let rest = path
        .strip_prefix(root)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .ok_or_else(|| Error::Unreachable {
            cgroup: path.to_owned(),
            mount: mount.mount_point.clone(),
        })?;
    let rest = rest.trim_start_matches('/');
    Ok(if rest.is_empty() {
        mount.mount_point.clone()
    } else {
        mount.mount_point.join(rest)
    })
}

/// Of several mounts of one hierarchy, the one under /sys/fs/cgroup that shows `path`
/// (the conventional place), else any that shows it.
pub fn pick<'m>(mounts: impl Iterator<Item = &'m Mount>, path: &str) -> Option<&'m Mount> {
    let reachable: Vec<&Mount> = mounts.filter(|m| cgroup_dir(m, path).is_ok()).collect();
    reachable
        .iter()
        .find(|m| m.mount_point.starts_with(Path::new("/sys/fs/cgroup")))
        .or(reachable.first())
        .copied()
}

/// The cgroup one level up; `None` for the root cgroup.
pub fn parent(path: &str) -> Option<String> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return None;
    }
    let (up, _) = trimmed.rsplit_once('/')?;
    Some(if up.is_empty() { "/" } else { up }.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
4:memory:/process_api/50d6625b
2:cpu,cpuacct:/user.slice
0::/
";

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const V2_MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn proc_cgroup_lines() {
        let own = proc_cgroup(HYBRID_CGROUP);
        assert_eq!(own.len(), 6);
        assert_eq!(own[0].controllers, ["name=systemd"]);
        assert_eq!(own[3].path, "/process_api/50d6625b");
        assert_eq!(own[4].controllers, ["cpu", "cpuacct"]);
        assert_eq!(
            own[5],
            OwnCgroup {
                hierarchy: 0,
                controllers: vec![],
                path: "/".into()
            }
        );
    }

    #[test]
    fn proc_cgroup_keeps_colons_in_paths_and_skips_junk() {
        let own = proc_cgroup("0::/a:b/c\ngarbage\n1:cpu\nx:cpu:/\n");
        assert_eq!(own.len(), 1);
        assert_eq!(own[0].path, "/a:b/c");
    }

    #[test]
    fn mountinfo_fields_with_optional_fields_and_escapes() {
        let m = mountinfo_line(
            "30 22 0:26 /sub\\040dir /sys/fs/cgroup rw,relatime shared:4 master:2 - cgroup2 cgroup2 rw,nsdelegate",
        )
        .unwrap();
        assert_eq!(m.root, "/sub dir");
        assert_eq!(m.mount_point, Path::new("/sys/fs/cgroup"));
        assert_eq!(m.fstype, "cgroup2");
        assert_eq!(m.super_options, ["rw", "nsdelegate"]);
        assert!(mountinfo_line("too short").is_none());
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn modes() {
        assert_eq!(mode(&mountinfo(HYBRID_MOUNTINFO)), CgroupMode::V1Hybrid);
        assert_eq!(mode(&mountinfo(V2_MOUNTINFO)), CgroupMode::V2);
        let only_named = "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd";
        assert_eq!(mode(&mountinfo(only_named)), CgroupMode::None);
        assert_eq!(mode(&[]), CgroupMode::None);
    }

    #[test]
    fn own_cgroup_directories() {
        let mounts = mountinfo(HYBRID_MOUNTINFO);
        let memory = pick(mounts.iter().filter(|m| m.has_v1("memory")), "/a/b").unwrap();
        assert_eq!(
            cgroup_dir(memory, "/a/b").unwrap(),
            Path::new("/sys/fs/cgroup/memory/a/b")
        );
        assert_eq!(
            cgroup_dir(memory, "/").unwrap().as_os_str(),
            "/sys/fs/cgroup/memory"
        );
        let cpu = mounts.iter().find(|m| m.has_v1("cpu")).unwrap();
        assert!(cpu.has_v1("cpuacct") && !cpu.has_v1("cpuset"));
    }

    #[test]
    fn bind_mounted_subtrees() {
        let sub = mountinfo_line("5 1 0:9 /user.slice /cg rw - cgroup2 cgroup2 rw").unwrap();
        assert_eq!(
            cgroup_dir(&sub, "/user.slice/app").unwrap(),
            Path::new("/cg/app")
        );
        assert_eq!(cgroup_dir(&sub, "/user.slice").unwrap(), Path::new("/cg"));
        assert!(cgroup_dir(&sub, "/user.slicex").is_err());
        assert!(cgroup_dir(&sub, "/system.slice").is_err());
        let other = mountinfo_line("6 1 0:9 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw").unwrap();
        let both = [sub.clone(), other];
        let picked = pick(both.iter(), "/user.slice/app").unwrap();
        assert_eq!(picked.mount_point, Path::new("/sys/fs/cgroup"));
        assert_eq!(
            pick([sub].iter(), "/system.slice").map(|m| m.root.clone()),
            None
        );
    }

    #[test]
    fn parents() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a").as_deref(), Some("/"));
        assert_eq!(parent("/a/b/").as_deref(), Some("/a"));
    }
}

//! The block devices io limits apply to: the whole disks behind the jail's paths.
//!
//! The kernel throttles per device and accepts only whole disks (a partition's
//! `MAJ:MIN` is refused), so a path on `vda1` is throttled through `vda`. Paths on
//! filesystems without a block device (tmpfs, overlay, proc, btrfs's anonymous device
//! numbers) have nothing to throttle and are left out.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::profile::IoLimits;

/// A whole-disk block device, with the jail paths that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoDevice {
    pub major: u32,
    pub minor: u32,
    pub paths: Vec<PathBuf>,
}

impl IoDevice {
    pub fn id(&self) -> String {
        format!("{}:{}", self.major, self.minor)
    }

    /// The v2 `io.max` line: `MAJ:MIN rbps=… wbps=… riops=… wiops=…` (only the set keys).
    pub fn io_max(&self, io: &IoLimits) -> String {
        let mut line = self.id();
        for (key, v) in [
            ("rbps", io.read_bps),
            ("wbps", io.write_bps),
            ("riops", io.read_iops),
            ("wiops", io.write_iops),
        ] {
            if let Some(v) = v {
                line += &format!(" {key}={v}");
            }
        }
        line
    }
}

impl Serialize for IoDevice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.id())
    }
}

/// `st_dev` split into (major, minor), by glibc's `major()`/`minor()` encoding.
pub fn split_dev(dev: u64) -> (u32, u32) {
    (libc::major(dev), libc::minor(dev))
}

/// The whole disks behind `paths` (missing paths and non-block filesystems are skipped).
pub fn devices(paths: &[PathBuf]) -> Vec<IoDevice> {
    let mut out: Vec<IoDevice> = Vec::new();
    // Most paths share a device: sysfs is asked once per device number (each lookup is a
    // dozen readlinks).
    let mut disks: Vec<(u64, Option<(u32, u32)>)> = Vec::new();
    for path in paths {
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        let disk = match disks.iter().find(|(dev, _)| *dev == meta.dev()) {
            Some(&(_, disk)) => disk,
            None => {
                let disk = whole_disk(split_dev(meta.dev()), Path::new("/sys/dev/block"));
                disks.push((meta.dev(), disk));
                disk
            }
        };
        let Some((major, minor)) = disk else {
            continue;
        };
        match out
            .iter_mut()
            .find(|d| (d.major, d.minor) == (major, minor))
        {
            Some(d) => d.paths.push(path.clone()),
            None => out.push(IoDevice {
                major,
                minor,
                paths: vec![path.clone()],
            }),
        }
    }
    out
}

/// The disk a block device belongs to, through sysfs: a partition's directory sits
/// inside its disk's, and has a `partition` file. `None` if it is no block device.
fn whole_disk((major, minor): (u32, u32), sys_dev_block: &Path) -> Option<(u32, u32)> {
    if major == 0 {
        return None;
    }
    let link = sys_dev_block.join(format!("{major}:{minor}"));
    let dir = std::fs::canonicalize(&link).ok()?;
    if !dir.join("partition").exists() {
        return Some((major, minor));
    }
    let parent = std::fs::read_to_string(dir.parent()?.join("dev")).ok()?;
    let (ma, mi) = parent.trim().split_once(':')?;
    Some((ma.parse().ok()?, mi.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_numbers_split_like_glibc() {
        assert_eq!(split_dev(0xfe00), (254, 0));
        assert_eq!(split_dev(0x0803), (8, 3));
        // Large minors spill into the high bits.
        let dev = (259u64 << 8) | ((0x1234u64 & !0xff) << 12) | 0x34;
        assert_eq!(split_dev(dev), (259, 0x1234));
    }

    #[test]
    fn partitions_resolve_to_their_disk() {
        let top = std::env::temp_dir().join(format!("plugjail-cg-io-{}", std::process::id()));
        let disk = top.join("devices/vda");
        std::fs::create_dir_all(disk.join("vda1")).unwrap();
        std::fs::write(disk.join("dev"), "254:0\n").unwrap();
        std::fs::write(disk.join("vda1/dev"), "254:1\n").unwrap();
        std::fs::write(disk.join("vda1/partition"), "1\n").unwrap();
        let links = top.join("block");
        std::fs::create_dir_all(&links).unwrap();
        std::os::unix::fs::symlink(&disk, links.join("254:0")).unwrap();
        std::os::unix::fs::symlink(disk.join("vda1"), links.join("254:1")).unwrap();
        let got = [
            whole_disk((254, 1), &links),
            whole_disk((254, 0), &links),
            whole_disk((0, 45), &links),
            whole_disk((7, 9), &links),
        ];
        std::fs::remove_dir_all(&top).unwrap();
        assert_eq!(got, [Some((254, 0)), Some((254, 0)), None, None]);
    }

    #[test]
    fn io_max_lines() {
        let d = IoDevice {
            major: 254,
            minor: 0,
            paths: vec![],
        };
        let io = IoLimits {
            read_bps: None,
            write_bps: Some(1 << 20),
            read_iops: Some(100),
            write_iops: None,
        };
        assert_eq!(d.io_max(&io), "254:0 wbps=1048576 riops=100");
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"254:0\"");
    }
}

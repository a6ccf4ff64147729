//! Turns a phase's names and `@groups` into the syscalls it allows, per architecture.

use std::collections::BTreeSet;

use super::model::Phase;
use crate::sysnames::{self, Arch};

/// Expands `@groups` into their members; plain names pass through. Unknown groups were
/// rejected when the profile was read, so they expand to nothing here.
pub fn expand_names<'a>(names: impl Iterator<Item = &'a str>) -> BTreeSet<&'a str> {
    let mut out = BTreeSet::new();
    for name in names {
        match sysnames::group(name) {
            Some(group) => out.extend(group.syscalls.iter().copied()),
            None if !name.starts_with('@') => {
                out.insert(name);
            }
            None => {}
        }
    }
    out
}

/// Every syscall name a phase allows (with or without argument conditions).
pub fn phase_names(phase: &Phase) -> BTreeSet<&str> {
    expand_names(
        phase
            .allow
            .iter()
            .flat_map(|r| r.syscalls.iter().map(String::as_str)),
    )
}

/// What a name list means on one architecture: the numbers, and the names that do not
/// exist there (legitimate: `open` is x86_64 only).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolved<'a> {
    pub numbers: Vec<(&'a str, u32)>,
    pub absent: Vec<&'a str>,
}

pub fn resolve<'a>(arch: Arch, names: &BTreeSet<&'a str>) -> Resolved<'a> {
    let mut out = Resolved::default();
    for &name in names {
        match sysnames::number(arch, name) {
            Some(nr) => out.numbers.push((name, nr)),
            None => out.absent.push(name),
        }
    }
    out
}

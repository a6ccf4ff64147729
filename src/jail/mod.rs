//! The jail: a validated profile turned into a [`Plan`] (parent, may allocate), then a
//! child cloned into new namespaces that runs one fixed sequence of syscalls
//! ([`child::run`]) and execs the target from a sealed memfd.
//!
//! docs/architecture.md walks through the sequence step by step.

pub mod child;
pub mod handover;
pub mod idmap;
pub mod init;
pub mod namespaces;
pub mod plan;
pub mod spawn;
pub mod step;
pub mod stop;
mod sys;
pub mod target;
pub mod template;

pub use handover::GateAction;
pub use plan::{Gate, Handover, Plan, PlanError, build};
pub use spawn::{
    Ending, Finished, LiveJail, Stopped, Watch, block_stop_signals, hold_stop_signals, start,
};
pub use step::{Failure, Step};
/// The one capability read outside the child (doctor's CAP_SYS_ADMIN), with the child's
/// own capability code.
pub(crate) use sys::capget_effective;
pub use target::TargetError;

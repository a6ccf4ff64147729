//! Profiles: the YAML policy ops staff write, read into a validated [`Profile`].
//!
//! The text never goes further than this module: the jail is built from the typed value.

// The reader's machinery is shared with the host configuration (`crate::host::config`).
pub(crate) mod cache;
pub(crate) mod diag;
pub(crate) mod fields;
pub mod lint;
mod load;
pub mod model;
pub(crate) mod read;
pub mod resolve;
pub mod units;
pub(crate) mod yaml;

pub use diag::{Diagnostic, ProfileErrors, ProfileWarnings};
pub(crate) use load::{Document, Loader};
pub use load::{MAX_PROFILE_BYTES, load, load_str};
pub use model::*;

#[cfg(test)]
mod tests;

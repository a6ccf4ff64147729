//! Profiles: the YAML policy ops staff write, read into a validated [`Profile`].
//!
//! The text never goes further than this module: the jail is built from the typed value.

mod diag;
mod fields;
mod load;
pub mod model;
pub(crate) mod read;
pub mod resolve;
pub mod units;
mod yaml;

pub use diag::{Diagnostic, ProfileErrors};
pub use load::{MAX_PROFILE_BYTES, load, load_str};
pub use model::*;

#[cfg(test)]
mod tests;

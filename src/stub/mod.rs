//! The in-jail stub (being written).

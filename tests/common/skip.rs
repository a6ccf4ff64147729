//! Skipping a test with a printed reason, which `PLUGJAIL_TEST_STRICT=1` (CI) turns into a
//! failure.

/// True when `PLUGJAIL_TEST_STRICT=1`: every skip is a failure (CI).
pub fn strict() -> bool {
    std::env::var_os("PLUGJAIL_TEST_STRICT").is_some_and(|v| v == "1")
}

/// Skips (prints the reason) or, under `PLUGJAIL_TEST_STRICT=1`, fails the current test.
/// The caller returns right after.
pub fn skip(reason: &str) {
    if strict() {
        panic!("PLUGJAIL_TEST_STRICT=1 and a test would skip: {reason}");
    }
    eprintln!("SKIP: {reason}");
}

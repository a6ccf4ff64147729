//! What one `plugjail exec` did ([`Run`]): its status, output and parsed report, and a
//! description of it all for failure messages. The checks on it are in `check.rs`.

use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use super::Mode;

/// What one `plugjail exec` did.
pub struct Run {
    pub mode: Mode,
    pub description: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub report_text: Option<String>,
    pub report: Option<serde_json::Value>,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Run {
    /// plugjail's exit code (None if plugjail itself died of a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The text after the last `result: ` line the hostile program printed.
    pub fn result(&self) -> Option<&str> {
        self.stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("result: "))
    }

    /// A report field, as a string or number.
    pub fn field(&self, name: &str) -> Option<&serde_json::Value> {
        self.report.as_ref()?.get(name)
    }

    pub fn outcome(&self) -> Option<&str> {
        self.field("outcome")?.as_str()
    }

    /// Everything about the run, for assertion messages.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "  mode: {}", self.mode.name());
        let _ = writeln!(s, "  command: {}", self.description);
        let _ = writeln!(
            s,
            "  status: {:?}{}{} after {:?}",
            self.status.code(),
            self.status.signal().map_or(String::new(), |n| format!(
                " (plugjail killed by signal {n})"
            )),
            if self.timed_out { " TIMED OUT" } else { "" },
            self.elapsed
        );
        let _ = writeln!(s, "  stdout: {}", indent(&self.stdout));
        let _ = writeln!(s, "  stderr: {}", indent(&self.stderr));
        let _ = writeln!(
            s,
            "  report: {}",
            indent(self.report_text.as_deref().unwrap_or("<none>"))
        );
        s
    }
}

fn indent(text: &str) -> String {
    let t = text.trim_end();
    if t.contains('\n') {
        format!("\n    {}", t.replace('\n', "\n    "))
    } else {
        t.to_string()
    }
}

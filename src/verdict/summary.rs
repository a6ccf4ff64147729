//! The verdict's one human line (`Display`), as printed on stderr after every run.

use std::fmt;

use super::{Outcome, Syscall, Verdict};

impl fmt::Display for Verdict {
    /// The one human line, e.g. `exited with code 0 after 12 ms`. `message` and
    /// `call_error.message` may hold plugin text (a startup ERROR, a fail() message), so
    /// they are printed escaped (`crate::text`): one line, no control characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::text::{Escaped, Quoted};
        let ms = self.wall_time_ms;
        let message = self.message.as_deref().map(|m| Escaped(m.as_bytes()));
        match self.outcome {
            Outcome::Exited => write!(
                f,
                "exited with code {} after {ms} ms",
                self.exit_code.unwrap_or(0)
            ),
            Outcome::Signaled => {
                let (n, name) = self
                    .signal
                    .as_ref()
                    .map_or((0, "?"), |s| (s.number, s.name.as_str()));
                write!(f, "killed by signal {n} ({name}) after {ms} ms")
            }
            Outcome::Oom | Outcome::Timeout | Outcome::PidsLimit => {
                let what = match self.outcome {
                    Outcome::Oom => "out of memory",
                    Outcome::Timeout => "timed out",
                    _ => "hit the pids limit",
                };
                write!(f, "{what}")?;
                if let Some(m) = message {
                    write!(f, " ({m})")?;
                }
                match (&self.signal, self.exit_code) {
                    (Some(s), _) => write!(f, ", killed by {}", s.name)?,
                    (None, Some(code)) => write!(f, ", exited with code {code}")?,
                    (None, None) => {}
                }
                write!(f, " after {ms} ms")
            }
            Outcome::SeccompViolation => {
                let unknown = Syscall::unknown();
                write!(
                    f,
                    "seccomp violation: {}",
                    self.syscall.as_ref().unwrap_or(&unknown)
                )?;
                if let Some(m) = message {
                    write!(f, " ({m})")?;
                }
                write!(f, " after {ms} ms")
            }
            Outcome::Ok => {
                write!(f, "session ended cleanly")?;
                if let Some(n) = self.calls {
                    write!(f, " after {n} call{}", if n == 1 { "" } else { "s" })?;
                }
                if let Some(e) = &self.call_error {
                    write!(
                        f,
                        "; the call failed ({} error): {}",
                        e.kind,
                        Quoted(&e.message)
                    )?;
                }
                write!(f, " ({ms} ms)")
            }
            Outcome::PluginFailed => {
                // Only plugjail's own words: `plugin_failure.message` is the plugin's.
                let stage = self.plugin_failure.as_ref().map_or("?", |p| p.stage);
                write!(f, "plugin failed to start ({stage})")?;
                if let Some(m) = &self.message {
                    write!(f, ": {m}")?;
                }
                write!(f, " after {ms} ms")
            }
            Outcome::ProtocolViolation => {
                write!(f, "protocol violation")?;
                if let Some(m) = message {
                    write!(f, ": {m}")?;
                }
                write!(f, " after {ms} ms")
            }
            Outcome::SetupFailed
            | Outcome::NotFound
            | Outcome::CannotExecute
            | Outcome::PluginRejected => {
                let what = match self.outcome {
                    Outcome::SetupFailed => "could not set up the jail",
                    Outcome::NotFound => "command not found",
                    Outcome::PluginRejected => "plugin rejected",
                    _ => "cannot execute the command",
                };
                write!(f, "{what}")?;
                if let Some(step) = &self.step {
                    write!(f, " (step {step}")?;
                    if let Some(e) = &self.errno {
                        write!(f, ", {}", e.name)?;
                    }
                    write!(f, ")")?;
                }
                if let Some(m) = message {
                    write!(f, ": {m}")?;
                }
                Ok(())
            }
        }
    }
}

//! Checks on a [`Run`] (exited, killed by seccomp and named, denied with an errno, safe),
//! and [`Failures`], which collects the failed checks of one test under readable labels.

use std::path::Path;

use super::{Run, grants_covering};

impl Run {
    /// Checks that the jailed program exited normally with `code`, in the exit status and
    /// in the report.
    pub fn check_exited(&self, code: i32) -> Result<(), String> {
        if self.timed_out {
            return Err("timed out".into());
        }
        if self.code() != Some(code) {
            return Err(format!("exit status {:?}, expected {code}", self.code()));
        }
        self.check_report("exited", "exit_code", code)
    }

    /// Checks that the seccomp filter refused `syscall` under `kill_process` and the
    /// jail named it: exit status 159 (128 + SIGSYS, as for the kernel's own kill), a
    /// `seccomp_violation` verdict naming the syscall, its number on this architecture and
    /// the architecture, named through ptrace — before the program printed a result.
    pub fn check_seccomp_violation(&self, syscall: &str) -> Result<(), String> {
        let arch = plugjail::sysnames::Arch::native();
        let Some(number) = plugjail::sysnames::number(arch, syscall) else {
            return Err(format!("{syscall} is not a syscall on {arch}"));
        };
        self.check_seccomp_number(Some(syscall), number)
    }

    /// [`Run::check_seccomp_violation`] by number: `name` is None for a number that is in
    /// no syscall table (the verdict's name is null then).
    pub fn check_seccomp_number(&self, name: Option<&str>, number: u32) -> Result<(), String> {
        if self.timed_out {
            return Err("timed out".into());
        }
        if let Some(r) = self.result() {
            return Err(format!(
                "the program was not killed by seccomp; it reported `{r}`"
            ));
        }
        let sigsys = libc::SIGSYS;
        if self.code() != Some(128 + sigsys) {
            return Err(format!(
                "exit status {:?}, expected {} (128 + SIGSYS)",
                self.code(),
                128 + sigsys
            ));
        }
        let Some(report) = &self.report else {
            return Err("no JSON report was written".into());
        };
        if self.outcome() != Some("seccomp_violation") {
            return Err("report outcome is not `seccomp_violation`".into());
        }
        let arch = plugjail::sysnames::Arch::native().name();
        // `exec` has one phase, the load phase; `args` is checked where a test wants it.
        let expected =
            serde_json::json!({"name": name, "number": number, "arch": arch, "phase": "load"});
        let syscall = report.get("syscall").cloned().unwrap_or_default();
        let got: serde_json::Map<_, _> = ["name", "number", "arch", "phase"]
            .iter()
            .filter_map(|k| Some((k.to_string(), syscall.get(*k)?.clone())))
            .collect();
        if serde_json::Value::Object(got) != expected {
            return Err(format!("report `syscall` is not {expected}"));
        }
        if report.get("signal").is_some() || report.get("exit_code").is_some() {
            return Err("a seccomp_violation report has a signal or exit code".into());
        }
        let naming = report.pointer("/enforced/seccomp/naming");
        if naming.and_then(|n| n.as_str()) != Some("ptrace") {
            return Err(format!(
                "enforced.seccomp.naming is {naming:?}, not \"ptrace\""
            ));
        }
        let line = match name {
            Some(n) => format!("plugjail: seccomp violation: {n} ({number}, {arch})"),
            None => format!("plugjail: seccomp violation: syscall {number} ({arch})"),
        };
        if !self.stderr.lines().any(|l| l.starts_with(&line)) {
            return Err(format!("stderr has no line starting with `{line}`"));
        }
        Ok(())
    }

    fn check_report(&self, outcome: &str, key: &str, value: i32) -> Result<(), String> {
        let Some(report) = &self.report else {
            return Err("no JSON report was written".into());
        };
        if report.get("outcome").and_then(|v| v.as_str()) != Some(outcome) {
            return Err(format!("report outcome is not `{outcome}`"));
        }
        // A number, or a named number such as `{"number": 31, "name": "SIGSYS"}`.
        let number = report
            .get(key)
            .and_then(|v| v.as_i64().or_else(|| v.get("number")?.as_i64()));
        if number != Some(i64::from(value)) {
            return Err(format!("report `{key}` is not {value}"));
        }
        Ok(())
    }

    /// Checks that the program exited 0 after printing `result: denied E` with `E` one of
    /// `errnos`.
    pub fn check_denied(&self, errnos: &[&str]) -> Result<(), String> {
        let result = self.result().unwrap_or("<no result line>");
        let got = result.strip_prefix("denied ");
        if !got.is_some_and(|e| errnos.contains(&e)) {
            return Err(format!(
                "expected `denied` with one of {errnos:?}, got `{result}`"
            ));
        }
        self.check_exited(0)
    }

    /// [`Run::check_denied`] for an attempt on the host path `path` under `profile`: when
    /// the attempt worked, the error says which path was reachable and which of the
    /// profile's mounts and Landlock rules cover it.
    pub fn check_denied_at(
        &self,
        profile: &Path,
        path: &Path,
        errnos: &[&str],
    ) -> Result<(), String> {
        self.check_denied(errnos).map_err(|e| {
            if self.result().is_some_and(|r| r.starts_with("escaped")) {
                let why = match grants_covering(profile, path) {
                    Some(grants) => format!("the profile covers it: {grants}"),
                    None => format!(
                        "no mount or Landlock rule of {} covers it",
                        profile.display()
                    ),
                };
                format!(
                    "{} was reachable in the jail; {why}\n  ({e})",
                    path.display()
                )
            } else {
                e
            }
        })
    }

    /// Checks that the program exited 0 after printing `result: safe ...`.
    pub fn check_safe(&self) -> Result<(), String> {
        let result = self.result().unwrap_or("<no result line>");
        if !result.starts_with("safe") {
            return Err(format!("expected `safe`, got `{result}`"));
        }
        self.check_exited(0)
    }
}

/// Collects failures of one test across modes and profiles, so a single run shows every
/// broken combination; panics at the end if there were any.
#[derive(Default)]
pub struct Failures(Vec<String>);

impl Failures {
    /// Records `check`'s error with a label and the run's details.
    /// With `PLUGJAIL_TEST_VERBOSE=1`, every checked run is printed (run the tests with
    /// `--nocapture` to see why a passing test passes).
    pub fn check(&mut self, label: &str, run: &Run, check: Result<(), String>) {
        if std::env::var_os("PLUGJAIL_TEST_VERBOSE").is_some_and(|v| v == "1") {
            let verdict = match (run.outcome(), run.code()) {
                (Some(o), Some(c)) => format!("{o}, status {c}"),
                (o, c) => format!("{o:?}, status {c:?}"),
            };
            eprintln!(
                "{} {label} [{}]: {verdict}; {}",
                if check.is_ok() { "ok  " } else { "FAIL" },
                run.mode.name(),
                run.result().unwrap_or("<no result line>"),
            );
        }
        if let Err(e) = check {
            self.0.push(format!(
                "{label} [{}]: {e}\n{}",
                run.mode.name(),
                run.describe()
            ));
        }
    }

    /// Records a failure that is not about one run's output (a host check).
    pub fn fail(&mut self, message: String) {
        self.0.push(message);
    }

    pub fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} failure(s):\n\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

//! plugjail's own wording of a plugin that did not start, for the verdict: shared by
//! `plugjail call` (plugjail is the host there) and host libraries (the Rust `Session`),
//! which both read the stub's startup ERROR frame. Never the plugin's own text: that
//! stays in `plugin_failure.message`, marked untrusted.

use crate::consts::ErrorKind;
use crate::consts::NO_ENTRY_MESSAGE as NO_ENTRY;

/// What a startup ERROR frame (call id 0) adds to a `plugin_failure` the stub's exit
/// code already established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupDetail {
    pub stage: &'static str,
    pub status: Option<i32>,
    /// The frame's message: untrusted (the plugin's code may have written it).
    pub message: String,
    /// plugjail's own sentence for the verdict's `message`.
    pub sentence: String,
}

/// The detail of a startup ERROR frame for a failure whose exit code said `exit_stage`,
/// or None when the frame is about something else (the exit code is the authority; the
/// frame only says more about the same stage: `load` becomes `entry` when the loader
/// found no entry symbol, `init` gains init()'s return value).
pub fn startup_detail(
    exit_stage: &str,
    kind: ErrorKind,
    status: i32,
    message: String,
) -> Option<StartupDetail> {
    let stage = match kind {
        ErrorKind::LoadFailed if message.starts_with(NO_ENTRY) => "entry",
        ErrorKind::LoadFailed => "load",
        ErrorKind::AbiMismatch => "abi",
        ErrorKind::InitFailed => "init",
        _ => return None,
    };
    let agrees = stage == exit_stage || (exit_stage == "load" && stage == "entry");
    if !agrees {
        return None;
    }
    let status = (stage == "init").then_some(status);
    let sentence = match stage {
        "load" => "dlopen of the plugin failed: a symbol or library it needs is missing, or \
                   it is not a shared object for this machine (plugin_failure.message has \
                   the loader's error)"
            .to_owned(),
        other => stage_sentence(other, status),
    };
    Some(StartupDetail {
        stage,
        status,
        message,
        sentence,
    })
}

/// plugjail's sentence for a stage of `plugin_failure` (the `message` and the summary
/// line): never the plugin's own text.
pub fn stage_sentence(stage: &str, status: Option<i32>) -> String {
    match (stage, status) {
        ("abi", _) => "the plugin's ABI version, struct size or description is not what this \
                       plugjail implements; none of its code ran beyond its constructors and \
                       entry function"
            .to_owned(),
        ("entry", _) => "the plugin does not export plugjail_plugin_v1".to_owned(),
        ("init", Some(status)) => format!("the plugin's init() returned {status}"),
        ("init", None) => "the plugin's init() failed".to_owned(),
        // `load` from the exit code alone covers a missing entry symbol too.
        (_, _) => "the plugin could not be loaded: dlopen failed (a symbol or library it needs \
                   is missing, or it is not a shared object for this machine) or it does not \
                   export plugjail_plugin_v1"
            .to_owned(),
    }
}

//! The protocol's numbers, shared by the host side, the stub and docs/protocol.md.

/// Version of the framing and payload layouts, carried in HELLO.
pub const PROTOCOL_VERSION: u32 = 1;

/// Version of the verdict JSON (docs/verdict.md), which host libraries write too when
/// `plugjail serve` delivered none.
pub const VERDICT_VERSION: u32 = 1;

/// Plugin C ABI version the stub implements (`PLUGJAIL_ABI_VERSION` in include/plugjail.h).
pub const ABI_VERSION: u32 = 1;

/// Every frame starts with this many bytes: u32 length, u16 type, u16 flags, u64 call id.
pub const HEADER_LEN: usize = 16;

/// The smallest cap either side accepts: a HELLO with long names must always fit.
pub const MIN_MAX_MESSAGE: u32 = 4096;

/// Frame types. Numbers are part of the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum FrameType {
    /// Stub → host, the first frame of a session: versions, plugin name and methods.
    Hello = 1,
    /// Host → stub: a method name and its input.
    Call = 2,
    /// Stub → host: the output of the call with the same id.
    Result = 3,
    /// Stub → host: the call with the same id failed (id 0: the plugin could not start).
    Error = 4,
    /// Stub → host, at any time: a level and a line of text.
    Log = 5,
    /// Host → stub: finish the session cleanly.
    Shutdown = 6,
    /// plugjail serve → host, before the jail exists: the frame cap and the deadlines.
    Session = 7,
}

impl FrameType {
    pub fn from_u16(v: u16) -> Option<FrameType> {
        Some(match v {
            1 => FrameType::Hello,
            2 => FrameType::Call,
            3 => FrameType::Result,
            4 => FrameType::Error,
            5 => FrameType::Log,
            6 => FrameType::Shutdown,
            7 => FrameType::Session,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FrameType::Hello => "HELLO",
            FrameType::Call => "CALL",
            FrameType::Result => "RESULT",
            FrameType::Error => "ERROR",
            FrameType::Log => "LOG",
            FrameType::Shutdown => "SHUTDOWN",
            FrameType::Session => "SESSION",
        }
    }
}

/// What an ERROR frame reports (its first u32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ErrorKind {
    /// call() returned non-zero; the status and the plugin's message follow.
    Plugin = 1,
    /// The CALL named a method the plugin does not list; call() was not run.
    UnknownMethod = 2,
    /// The plugin wrote more than fits in one frame; its output was discarded.
    OutputTooLarge = 3,
    /// The CALL payload was malformed (the host's bug); call() was not run.
    BadCall = 4,
    /// Call id 0: dlopen of the plugin failed, or it lacks `plugjail_plugin_v1`.
    LoadFailed = 5,
    /// Call id 0: ABI version, struct size or description invalid; nothing of it ran
    /// beyond its constructors and entry function.
    AbiMismatch = 6,
    /// Call id 0: the plugin's init() returned non-zero.
    InitFailed = 7,
    /// Call id 0: the serve-phase seccomp filter could not be installed or verified.
    FilterFailed = 8,
}

impl ErrorKind {
    pub fn from_u32(v: u32) -> Option<ErrorKind> {
        Some(match v {
            1 => ErrorKind::Plugin,
            2 => ErrorKind::UnknownMethod,
            3 => ErrorKind::OutputTooLarge,
            4 => ErrorKind::BadCall,
            5 => ErrorKind::LoadFailed,
            6 => ErrorKind::AbiMismatch,
            7 => ErrorKind::InitFailed,
            8 => ErrorKind::FilterFailed,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Plugin => "plugin",
            ErrorKind::UnknownMethod => "unknown_method",
            ErrorKind::OutputTooLarge => "output_too_large",
            ErrorKind::BadCall => "bad_call",
            ErrorKind::LoadFailed => "load_failed",
            ErrorKind::AbiMismatch => "abi_mismatch",
            ErrorKind::InitFailed => "init_failed",
            ErrorKind::FilterFailed => "filter_failed",
        }
    }
}

/// LOG levels. 0..=3 are the plugin's own (`PLUGJAIL_LOG_*`); 4 is a chunk of what the
/// plugin wrote to its stdout or stderr, forwarded by the stub.
pub mod log_level {
    pub const DEBUG: u32 = 0;
    pub const INFO: u32 = 1;
    pub const WARN: u32 = 2;
    pub const ERROR: u32 = 3;
    pub const OUTPUT: u32 = 4;
}

/// Longest plugin name, version or method name in HELLO.
pub const MAX_NAME_LEN: usize = 255;
/// Most methods a plugin may list.
pub const MAX_METHODS: usize = 1024;

/// Exit codes of plugjail-stub, for the supervisor's verdict. A plugin crash is a signal,
/// not one of these.
pub mod exit_code {
    /// SHUTDOWN received, or the host closed the channel between calls.
    pub const OK: i32 = 0;
    /// Bad command line (a launcher bug).
    pub const USAGE: i32 = 64;
    /// The host sent a malformed or out-of-order frame.
    pub const PROTOCOL: i32 = 65;
    /// Reading or writing the channel failed, or it closed in the middle of a frame.
    pub const CHANNEL: i32 = 66;
    /// dlopen failed or the entry symbol is missing.
    pub const LOAD_FAILED: i32 = 67;
    /// Wrong ABI version, struct size or description: the plugin is rejected.
    pub const ABI_MISMATCH: i32 = 68;
    /// init() returned non-zero.
    pub const INIT_FAILED: i32 = 69;
}

/// Log text (levels 0–3) the stub forwards per call (or init); the rest is dropped and the
/// host told once how much (docs/protocol.md, LOG).
pub const LOG_BUDGET: usize = 1 << 20;
/// The plugin's stdout/stderr (level 4) the stub forwards per call (or init).
pub const OUTPUT_BUDGET: usize = 64 << 10;

/// How the stub's `load_failed` ERROR message begins when the plugin loaded but does not
/// export its entry symbol (a host tells that apart from a failed dlopen by it).
pub const NO_ENTRY_MESSAGE: &str = "the plugin does not export plugjail_plugin_v1";

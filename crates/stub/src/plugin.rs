//! The plugin side of the stub: the C ABI of include/plugjail.h mirrored in Rust, loading
//! through `/proc/self/fd/N`, the ABI checks, and the host-services callbacks.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::os::fd::RawFd;

use plugjail_protocol::consts::{ABI_VERSION, MAX_METHODS, log_level};
use plugjail_protocol::frame::FrameWriter;
use plugjail_protocol::payload::{MAX_ERROR_MESSAGE, check_name};

use super::sink;

/// `struct plugjail_plugin`.
#[repr(C)]
pub struct PluginDesc {
    pub struct_size: u32,
    pub abi_version: u32,
    pub name: *const c_char,
    pub version: *const c_char,
    pub methods: *const *const c_char,
    pub init: Option<unsafe extern "C" fn(*const HostTable) -> c_int>,
    pub call: Option<unsafe extern "C" fn(*const c_char, *const u8, usize, *mut Output) -> c_int>,
    pub shutdown: Option<unsafe extern "C" fn()>,
}

/// `struct plugjail_host`.
#[repr(C)]
pub struct HostTable {
    pub struct_size: u32,
    pub abi_version: u32,
    pub max_output: u64,
    pub log: unsafe extern "C" fn(u32, *const c_char, usize),
    pub write: unsafe extern "C" fn(*mut Output, *const c_void, usize) -> c_int,
    pub fail: unsafe extern "C" fn(*mut Output, *const c_char, usize),
}

/// Why the plugin could not be started; each maps to an ERROR kind and an exit code.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("dlopen {path}: {message}")]
    Dlopen { path: String, message: String },
    #[error("{}: {message}", plugjail_protocol::consts::NO_ENTRY_MESSAGE)]
    NoEntry { message: String },
    #[error("plugin ABI mismatch: {what}")]
    Abi { what: String },
}

/// The output of one call: a RESULT frame under construction, plus the failure message.
/// The plugin sees only an opaque pointer to it.
pub struct Output {
    pub frame: FrameWriter,
    pub max: usize,
    pub overflow: bool,
    pub message: Vec<u8>,
    /// With shared-memory calls: the output goes straight into the region's response
    /// area (after the frame header), not into `frame`: one copy of a large output less.
    pub direct: Option<Direct>,
}

/// Where a shared-memory call's output is written, and how much of it there is.
pub struct Direct {
    /// The first payload byte of the response area (`max` bytes are writable there).
    pub base: *mut u8,
    pub len: usize,
}

impl Output {
    pub fn new(cap: u32) -> Output {
        Output {
            frame: FrameWriter::new(cap),
            max: cap as usize,
            overflow: false,
            message: Vec::new(),
            direct: None,
        }
    }

    /// Bytes of output so far.
    pub fn written(&self) -> usize {
        match &self.direct {
            Some(d) => d.len,
            None => self.frame.payload_len(),
        }
    }
}

/// A loaded and checked plugin.
pub struct Plugin {
    pub desc: &'static PluginDesc,
    pub name: &'static str,
    pub version: &'static str,
    /// (name, the plugin's own pointer), sorted by name for lookup.
    pub methods: Vec<(&'static str, *const c_char)>,
    /// Method names in the plugin's own order, for HELLO.
    pub listed: Vec<&'static str>,
}

impl Plugin {
    pub fn method(&self, name: &str) -> Option<*const c_char> {
        self.methods
            .binary_search_by(|(m, _)| (*m).cmp(name))
            .ok()
            .map(|i| self.methods[i].1)
    }
}

fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl*
    // call on this thread; it is copied at once.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        return "unknown error".to_string();
    }
    // SAFETY: non-NULL, NUL-terminated (see above).
    unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
}

/// dlopens the plugin from its memfd and validates its description. The plugin's
/// constructors and its entry function run here; init() does not.
pub fn load(fd: RawFd) -> Result<Plugin, LoadError> {
    let path = format!("/proc/self/fd/{fd}\0");
    // SAFETY: NUL-terminated path. RTLD_NOW resolves every symbol now, inside the load
    // phase, so a missing symbol is a load error and not a crash in a later call.
    let handle = unsafe { libc::dlopen(path.as_ptr().cast(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(LoadError::Dlopen {
            path: path.trim_end_matches('\0').to_string(),
            message: dlerror(),
        });
    }
    // SAFETY: valid handle and NUL-terminated symbol name. The handle is never closed:
    // the plugin lives as long as the process.
    let sym = unsafe { libc::dlsym(handle, c"plugjail_plugin_v1".as_ptr()) };
    if sym.is_null() {
        return Err(LoadError::NoEntry { message: dlerror() });
    }
    // SAFETY: the header declares the symbol as `const struct plugjail_plugin *(void)`;
    // a plugin lying about it can only corrupt its own (jailed) process.
    let entry: unsafe extern "C" fn() -> *const PluginDesc = unsafe { std::mem::transmute(sym) };
    // SAFETY: calling the plugin's entry point, as the ABI defines.
    let desc = unsafe { entry() };
    // SAFETY: checked for NULL; the ABI requires static storage, so 'static holds for a
    // conforming plugin (and a non-conforming one only harms its own process).
    let desc: &'static PluginDesc =
        unsafe { desc.as_ref() }.ok_or_else(|| abi("plugjail_plugin_v1 returned NULL"))?;
    // SAFETY: what the ABI promises of the description (a plugin that breaks it can only
    // crash its own jailed process, as it could anyway).
    unsafe { validate(desc) }
}

fn abi(what: impl Into<String>) -> LoadError {
    LoadError::Abi { what: what.into() }
}

/// Checks what the stub relies on before calling anything in the plugin.
///
/// # Safety
/// `desc` must keep the ABI's promises on its pointers: `name` and `version` NULL or
/// NUL-terminated strings, `methods` NULL or a NULL-terminated array of such strings, all
/// in static storage.
pub unsafe fn validate(desc: &'static PluginDesc) -> Result<Plugin, LoadError> {
    if desc.abi_version != ABI_VERSION {
        return Err(abi(format!(
            "the plugin was built for ABI version {}, this stub implements {ABI_VERSION}",
            desc.abi_version
        )));
    }
    let size = std::mem::size_of::<PluginDesc>();
    if desc.struct_size as usize != size {
        return Err(abi(format!(
            "struct plugjail_plugin is {} bytes in the plugin, {size} in ABI {ABI_VERSION}",
            desc.struct_size
        )));
    }
    // SAFETY: the caller vouches for both pointers (see above).
    let name = unsafe { c_name(desc.name, "name") }?;
    // SAFETY: as above.
    let version = unsafe { c_name(desc.version, "version") }?;
    if desc.call.is_none() {
        return Err(abi("call is NULL"));
    }
    if desc.methods.is_null() {
        return Err(abi("methods is NULL"));
    }
    let mut methods = Vec::new();
    for i in 0..=MAX_METHODS {
        // SAFETY: the caller vouches that `methods` is a NULL-terminated array, and the
        // loop stops at the NULL: entry i is within it.
        let slot = unsafe { desc.methods.add(i) };
        // SAFETY: `slot` points at an entry of that array (just above).
        let p = unsafe { *slot };
        if p.is_null() {
            break;
        }
        if i == MAX_METHODS {
            return Err(abi("more than 1024 methods"));
        }
        // SAFETY: an entry of `methods`, which the caller vouches for.
        methods.push((unsafe { c_name(p, "method name") }?, p));
    }
    let listed = methods.iter().map(|m| m.0).collect();
    methods.sort_by(|a, b| a.0.cmp(b.0));
    if methods.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(abi("a method is listed twice"));
    }
    Ok(Plugin {
        desc,
        name,
        version,
        methods,
        listed,
    })
}

/// `p` as a checked name.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string in static storage.
unsafe fn c_name(p: *const c_char, what: &str) -> Result<&'static str, LoadError> {
    if p.is_null() {
        return Err(abi(format!("{what} is NULL")));
    }
    // SAFETY: not NULL, so a NUL-terminated string in static storage (the caller's promise).
    let s = unsafe { CStr::from_ptr(p) };
    check_name(s.to_bytes()).ok_or_else(|| {
        abi(format!(
            "{what} {:?} is not 1 to 255 bytes of printable UTF-8",
            s.to_string_lossy()
        ))
    })
}

/// `struct_size` of the host table.
// Two u32s, a u64 and three function pointers: 40 bytes, far below u32::MAX.
#[allow(clippy::cast_possible_truncation)]
const HOST_TABLE_SIZE: u32 = std::mem::size_of::<HostTable>() as u32;

/// The table handed to init(); lives as long as the process.
pub fn host_table(max_output: u64) -> &'static HostTable {
    Box::leak(Box::new(HostTable {
        struct_size: HOST_TABLE_SIZE,
        abi_version: ABI_VERSION,
        max_output,
        log: host_log,
        write: host_write,
        fail: host_fail,
    }))
}

/// `host->log`: a LOG frame now, within the per-call budget.
unsafe extern "C" fn host_log(level: u32, text: *const c_char, len: usize) {
    let level = level.min(log_level::ERROR);
    let bytes = if text.is_null() || len == 0 {
        &[][..]
    } else {
        // SAFETY: the plugin promises `len` readable bytes at `text`; only a prefix is
        // looked at.
        unsafe { std::slice::from_raw_parts(text.cast::<u8>(), len.min(sink::MAX_LOG_LINE)) }
    };
    sink::log(level, bytes);
}

/// `host->write`: appends to the RESULT frame being built, up to the cap.
unsafe extern "C" fn host_write(out: *mut Output, data: *const c_void, len: usize) -> c_int {
    // SAFETY: `out` is the pointer the stub passed to call(), alive for the call; the
    // plugin may only use it during that call, on that thread.
    let Some(out) = (unsafe { out.as_mut() }) else {
        return -1;
    };
    if len == 0 {
        return 0;
    }
    if data.is_null() || out.overflow {
        return -1;
    }
    if out.written().saturating_add(len) > out.max {
        out.overflow = true;
        return -1;
    }
    if let Some(d) = out.direct.as_mut() {
        // SAFETY: the plugin promises `len` readable bytes at `data`; `base` has `max`
        // writable bytes (the response area, mapped for the process's life) and
        // `d.len + len <= max` (checked above). `copy` tolerates overlap, should the
        // plugin pass a pointer into the region itself.
        let to = d.base.wrapping_add(d.len);
        // SAFETY: as above: `to` has `len` writable bytes within the response area.
        unsafe { std::ptr::copy(data.cast::<u8>(), to, len) };
        d.len += len;
        return 0;
    }
    // SAFETY: the plugin promises `len` readable bytes at `data`.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    if out.frame.push(bytes).is_err() {
        out.overflow = true;
        return -1;
    }
    0
}

/// `host->fail`: the message of the ERROR frame if call() fails.
unsafe extern "C" fn host_fail(out: *mut Output, message: *const c_char, len: usize) {
    // SAFETY: as in host_write.
    let Some(out) = (unsafe { out.as_mut() }) else {
        return;
    };
    out.message.clear();
    if message.is_null() {
        return;
    }
    // SAFETY: the plugin promises `len` readable bytes at `message`; only a prefix is
    // looked at.
    let bytes =
        unsafe { std::slice::from_raw_parts(message.cast::<u8>(), len.min(MAX_ERROR_MESSAGE)) };
    out.message.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn call(_: *const c_char, _: *const u8, _: usize, _: *mut Output) -> c_int {
        0
    }

    fn desc(methods: &'static [*const c_char]) -> PluginDesc {
        PluginDesc {
            struct_size: u32::try_from(std::mem::size_of::<PluginDesc>()).unwrap(),
            abi_version: ABI_VERSION,
            name: c"t".as_ptr(),
            version: c"1".as_ptr(),
            methods: methods.as_ptr(),
            init: None,
            call: Some(call),
            shutdown: None,
        }
    }

    struct Methods<const N: usize>([*const c_char; N]);
    // SAFETY: pointers to 'static C string literals, never written.
    unsafe impl<const N: usize> Sync for Methods<N> {}

    static GOOD: Methods<3> = Methods([c"b".as_ptr(), c"a".as_ptr(), std::ptr::null()]);
    static TWICE: Methods<3> = Methods([c"a".as_ptr(), c"a".as_ptr(), std::ptr::null()]);
    static CONTROL: Methods<2> = Methods([c"a\n".as_ptr(), std::ptr::null()]);

    fn check(d: PluginDesc) -> Result<Plugin, LoadError> {
        // SAFETY: every description here is built by `desc`: static C string literals, a
        // NULL-terminated static array, or NULL.
        unsafe { validate(Box::leak(Box::new(d))) }
    }

    #[test]
    fn a_good_description_keeps_the_plugin_order_and_finds_methods() {
        let p = check(desc(&GOOD.0)).expect("valid");
        assert_eq!(p.listed, ["b", "a"]);
        assert!(p.method("a").is_some() && p.method("c").is_none());
    }

    #[test]
    fn size_version_and_names_are_checked() {
        let mut d = desc(&GOOD.0);
        d.struct_size -= 8;
        let e = check(d).err().expect("short struct").to_string();
        assert!(e.contains("struct plugjail_plugin is"), "{e}");
        let mut d = desc(&GOOD.0);
        d.abi_version = 2;
        assert!(
            check(d)
                .err()
                .expect("version")
                .to_string()
                .contains("ABI version 2")
        );
        let mut d = desc(&GOOD.0);
        d.call = None;
        assert!(check(d).is_err());
        let mut d = desc(&GOOD.0);
        d.name = std::ptr::null();
        assert!(check(d).is_err());
        assert!(check(desc(&TWICE.0)).is_err());
        assert!(check(desc(&CONTROL.0)).is_err());
    }
}

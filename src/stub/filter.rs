//! The serve-phase seccomp filter: read from its sealed memfd as raw `struct sock_filter`
//! instructions, stacked on the load-phase filter for every thread (TSYNC: a thread the
//! plugin started in init must not keep the looser filter), then verified.
//!
//! Verification matters because the plugin ran code (constructors, init) while `seccomp`
//! was still allowed: it could have installed its own filter that fakes success of the
//! stub's `seccomp` call (`SECCOMP_RET_ERRNO` with errno 0). So the stub prepends a probe
//! to the program — `getpid` with a random first argument returns a random errno — and
//! after installing checks that exactly that answer comes back. A filter installed earlier
//! by the plugin cannot know either random value.

use std::os::fd::RawFd;

/// The kernel's BPF_MAXINSNS.
const MAX_INSTRUCTIONS: usize = 4096;
const PROBE_LEN: usize = 7;
/// `SECCOMP_FILTER_FLAG_TSYNC`.
const TSYNC: u32 = 1;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("reading the serve filter from fd {fd}: errno {errno}")]
    Read { fd: RawFd, errno: i32 },
    #[error("the serve filter is {len} bytes: not a whole number of 1 to 4095 instructions")]
    Size { len: usize },
    #[error("getrandom for the filter probe: errno {errno}")]
    Random { errno: i32 },
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): errno {errno}")]
    Install { errno: i32 },
    #[error("seccomp(TSYNC): thread {tid} cannot take the filter")]
    Sync { tid: i64 },
    #[error("the serve filter is not in force after installing it (probe answered {got})")]
    NotInForce { got: i64 },
}

/// A serve filter ready to install: the probe, then the profile's program.
pub struct ServeFilter {
    prog: Vec<libc::sock_filter>,
    key: u32,
    errno: u16,
}

/// Reads the whole program from the memfd (pread: the file offset does not matter).
pub fn read(fd: RawFd) -> Result<ServeFilter, FilterError> {
    let mut bytes = vec![0u8; (MAX_INSTRUCTIONS - PROBE_LEN) * 8 + 1];
    let mut len = 0;
    loop {
        let room = &mut bytes[len..];
        if room.is_empty() {
            break;
        }
        // SAFETY: `room` is a valid writable slice.
        let n = unsafe { libc::pread(fd, room.as_mut_ptr().cast(), room.len(), len as i64) };
        match n {
            0 => break,
            n if n > 0 => len += n as usize,
            _ => {
                let errno = errno();
                if errno != libc::EINTR {
                    return Err(FilterError::Read { fd, errno });
                }
            }
        }
    }
    if len == 0 || len % 8 != 0 || len > (MAX_INSTRUCTIONS - PROBE_LEN) * 8 {
        return Err(FilterError::Size { len });
    }
    let mut rnd = [0u8; 8];
    // SAFETY: 8 writable bytes; flags 0.
    let n = unsafe { libc::getrandom(rnd.as_mut_ptr().cast(), 8, 0) };
    if n != 8 {
        return Err(FilterError::Random { errno: errno() });
    }
    let key = u32::from_ne_bytes([rnd[0], rnd[1], rnd[2], rnd[3]]) | 1;
    // 1..=4095: the range the kernel passes back as an errno.
    let errno = 1 + (u16::from_ne_bytes([rnd[4], rnd[5]]) % 4095);
    let mut prog = probe(key, errno).to_vec();
    prog.extend(bytes[..len].chunks_exact(8).map(|c| libc::sock_filter {
        code: u16::from_ne_bytes([c[0], c[1]]),
        jt: c[2],
        jf: c[3],
        k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
    }));
    Ok(ServeFilter { prog, key, errno })
}

/// `if arch == native && nr == getpid && (u32)args[0] == key: return ERRNO(errno)`, else
/// fall through to the profile's program.
fn probe(key: u32, errno: u16) -> [libc::sock_filter; PROBE_LEN] {
    const LD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let i = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    [
        i(LD, 0, 0, 4),                        // seccomp_data.arch
        i(JEQ, 0, 5, AUDIT_ARCH),              // other arch: to the program
        i(LD, 0, 0, 0),                        // seccomp_data.nr
        i(JEQ, 0, 3, libc::SYS_getpid as u32), // not getpid: to the program
        i(LD, 0, 0, 16),                       // low half of args[0] (LE)
        i(JEQ, 0, 1, key),                     // not the key: to the program
        i(RET, 0, 0, libc::SECCOMP_RET_ERRNO | u32::from(errno)),
    ]
}

impl ServeFilter {
    pub fn instructions(&self) -> usize {
        self.prog.len()
    }

    /// Installs on every thread and checks that the probe answers.
    pub fn install(&self) -> Result<(), FilterError> {
        // read() bounded the program to MAX_INSTRUCTIONS.
        let r = crate::seccomp::install_with_flags(&self.prog, TSYNC)
            .map_err(|e| FilterError::Install { errno: e as i32 })?;
        if r > 0 {
            return Err(FilterError::Sync { tid: r });
        }
        // SAFETY: getpid ignores its arguments; the probe in the new filter answers first.
        let got = unsafe { libc::syscall(libc::SYS_getpid, self.key as libc::c_long) };
        if got != -1 || errno() != i32::from(self.errno) {
            return Err(FilterError::NotInForce { got });
        }
        Ok(())
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

//! The call path: waiting for HELLO, calls under a deadline, and what a failed call does
//! to the session (a fatal one ends the jail and is remembered for the verdict).

use std::time::Duration;

use crate::{CallError, HostFault, Session};

/// Per-call deadline when neither the options nor the profile set one.
const DEFAULT_CALL: Duration = Duration::from_secs(60);
use plugjail_protocol::{Channel, ChannelError, Hello};

impl Session {
    /// Waits for the plugin's HELLO (once): its name, version and methods.
    pub fn hello(&mut self) -> Result<&Hello, CallError> {
        let timeout = self.handshake_timeout;
        let chan = self.channel.as_mut().ok_or(CallError::Ended)?;
        if chan.hello().is_none() {
            if let Err(e) = chan.handshake(timeout) {
                return Err(self.fail(e));
            }
            self.profile_call_time = chan
                .session()
                .map(|s| Duration::from_millis(s.call_time_ms))
                .filter(|d| !d.is_zero());
            // The stub serves the region from HELLO on.
            if let Some(ring) = self.ring.take() {
                chan.attach_shm(ring);
            }
        }
        let chan = self.channel.as_ref().ok_or(CallError::Ended)?;
        chan.hello().ok_or(CallError::Ended)
    }

    /// Calls `method` with `input` under the session's per-call deadline.
    pub fn call(&mut self, method: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
        self.hello()?;
        let timeout = self.call_timeout();
        self.call_with_timeout(method, input, timeout)
    }

    /// Calls `method` with `input`, answering within `timeout` or ending the session.
    pub fn call_with_timeout(
        &mut self,
        method: &str,
        input: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        self.call_ref_with_timeout(method, input, timeout)
            .map(<[u8]>::to_vec)
    }

    /// Like [`Session::call`], but the output is borrowed from the session's read buffer
    /// (valid until the next call) instead of copied into a new `Vec`: for hosts that
    /// consume the output at once, one copy of it less.
    pub fn call_ref(&mut self, method: &str, input: &[u8]) -> Result<&[u8], CallError> {
        self.hello()?;
        let timeout = self.call_timeout();
        self.call_ref_with_timeout(method, input, timeout)
    }

    /// [`Session::call_ref`] with its own deadline.
    pub fn call_ref_with_timeout(
        &mut self,
        method: &str,
        input: &[u8],
        timeout: Duration,
    ) -> Result<&[u8], CallError> {
        self.hello()?;
        let chan = self.channel.as_mut().ok_or(CallError::Ended)?;
        match chan.call(method, input, timeout) {
            Ok(_) => {
                self.calls += 1;
                // Borrowed again: the first borrow could not outlive the error arm.
                let chan = self.channel.as_ref().ok_or(CallError::Ended)?;
                Ok(chan.last_output())
            }
            Err(e) => {
                if matches!(e, ChannelError::Remote { .. }) {
                    self.calls += 1;
                }
                Err(self.fail(e))
            }
        }
    }

    /// The per-call deadline in use: `SessionOptions::call_timeout`, else the profile's
    /// `limits.call_time` (known after [`Session::hello`]), else 60 s.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
            .or(self.profile_call_time)
            .unwrap_or(DEFAULT_CALL)
    }

    /// The most memory the host side ever reserved for reading frames: never more than
    /// the profile's max_message, whatever the plugin sends.
    pub fn peak_buffer(&self) -> usize {
        let now = self.channel.as_ref().map_or(0, Channel::read_capacity);
        self.peak_buffer.max(now)
    }

    /// Turns a channel error into a call error; a fatal one ends the session.
    fn fail(&mut self, e: ChannelError) -> CallError {
        self.peak_buffer = self.peak_buffer();
        let err = match e {
            ChannelError::Remote {
                kind,
                status,
                message,
            } => {
                return CallError::Failed {
                    kind,
                    status,
                    message,
                };
            }
            ChannelError::InputTooLarge { len, cap } => {
                return CallError::InputTooLarge { len, cap };
            }
            ChannelError::Protocol(p) => {
                self.fault = Some(HostFault::Protocol(p.to_string()));
                CallError::Protocol(p)
            }
            ChannelError::Timeout { after } => {
                self.fault = Some(HostFault::Timeout(after));
                CallError::Timeout { after }
            }
            ChannelError::Startup {
                kind,
                status,
                message,
            } => {
                self.startup = Some((kind, status, message.clone()));
                CallError::Startup {
                    kind,
                    status,
                    message,
                }
            }
            ChannelError::Io { syscall, source } => CallError::Io { syscall, source },
            ChannelError::Shm(e) => CallError::Io {
                syscall: "shared memory",
                source: std::io::Error::other(e),
            },
            ChannelError::NotDelivered => CallError::NotDelivered,
            ChannelError::Closed | ChannelError::Broken | ChannelError::NotReady => {
                CallError::Ended
            }
        };
        match self.fault {
            // The plugin is stuck: tell the supervisor it is the host's deadline (it ends
            // the jail and says `timeout`, kind `host`).
            Some(HostFault::Timeout(after)) => self.signal_deadline(after),
            // The stream is out of step: stop the jail now (the supervisor ends it and
            // still delivers its verdict).
            Some(HostFault::Protocol(_)) => self.stop(),
            None => {}
        }
        // Closing our ends lets a stub that is still alive see end of file.
        self.channel = None;
        err
    }

    /// Tells `plugjail serve` that the host's deadline passed (SIGUSR1, the deadline in
    /// milliseconds as the signal's value): it ends the jail and reports a timeout.
    fn signal_deadline(&mut self, after: Duration) {
        let Some(pid) = self.child.as_ref().and_then(|c| i32::try_from(c.id()).ok()) else {
            return;
        };
        // 0 (not said) when it does not fit the signal's int; a non-negative int fits a
        // usize.
        let ms = i32::try_from(after.as_millis()).unwrap_or(0);
        let ms = usize::try_from(ms).unwrap_or(0);
        // sigval is a union of an int and a pointer: the int is the pointer's low half,
        // which is its first bytes on a little-endian machine and its last on a big one.
        let bits = if cfg!(target_endian = "little") {
            ms
        } else {
            ms << (usize::BITS - 32)
        };
        let value = libc::sigval {
            sival_ptr: std::ptr::without_provenance_mut(bits),
        };
        // SAFETY: sigqueue copies the value; the pid is our own child, not yet reaped, so
        // it cannot have been reused.
        if unsafe { libc::sigqueue(pid, libc::SIGUSR1, value) } != 0 {
            self.stop();
        }
    }
}

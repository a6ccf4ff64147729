//! A client of `plugjail host --config FILE` on its stdin and stdout
//! (docs/host-protocol.md), as a C or C++ application would use it: one connection that
//! any number of threads call through, each CALL with its own id.
//!
//! Calling threads share the connection without a reader thread of their own: whoever
//! waits for an answer and finds nobody reading reads frames until its own answer comes,
//! leaving the others' answers for them and waking only the thread each is for (and, when
//! it leaves, one waiting thread to read next). One caller thus reads its answer itself
//! (no thread hop in the client), as a single-threaded client would, and N callers cost
//! one wake-up per answer.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use plugjail::host::wire::codec::{FrameType, HEADER_LEN, Request, decode_header, encode_request};

use super::BenchError;

/// How long the server may take to say HELLO and have its pools ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a call's answer may take (the default profile's call_time is 30 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(40);

pub struct Wire {
    child: Child,
    to: Mutex<ChildStdin>,
    from: Mutex<BufReader<ChildStdout>>,
    state: Mutex<State>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct State {
    /// A thread is reading frames.
    reading: bool,
    /// Threads parked until their answer is left for them or the reader's role is free,
    /// by the id of the call they wait for.
    waiting: HashMap<u64, Thread>,
    /// Answers read by a thread they were not for.
    answers: HashMap<u64, Answer>,
    /// The stream failed: every waiting call fails.
    broken: Option<String>,
}

/// A RESULT's output, or an ERROR's JSON.
type Answer = Result<Vec<u8>, String>;

/// One frame read: (type, id, payload).
type Frame = (u16, u64, Vec<u8>);

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> BenchError {
    move |source| BenchError::Io { what, source }
}

fn wire_error(what: String) -> BenchError {
    BenchError::Cli {
        who: "plugjail host".into(),
        what,
    }
}

impl Wire {
    /// Writes a configuration with one plugin `id` whose pool has `warm = max = jails`
    /// next to `config`, starts `plugjail host` on it, and returns once its HELLO came
    /// and the pool has `jails` jails ready (counted from HELLO and `jail_ready` events).
    pub fn start(
        plugjail: &Path,
        config: &Path,
        id: &str,
        plugin: &Path,
        profile: &Path,
        jails: usize,
    ) -> Result<Wire, BenchError> {
        // A JSON string is a YAML double-quoted scalar: any path comes out quoted right.
        let quote = |p: &Path| serde_json::Value::from(p.to_string_lossy()).to_string();
        let text = format!(
            "# Written by the plugjail bench (benches/suite/wire.rs).\n\
             version: 1\n\
             plugins:\n  - id: {id}\n    plugin: {}\n    profile: {}\n    \
             pool: {{warm: {jails}, max: {jails}}}\n",
            quote(plugin),
            quote(profile)
        );
        std::fs::write(config, text).map_err(io("writing the plugjail host configuration"))?;
        let mut child = Command::new(plugjail)
            .arg("host")
            .arg("--config")
            .arg(config)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| BenchError::Spawn {
                program: "plugjail host",
                source,
            })?;
        let (Some(to), Some(from)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(wire_error("no pipes".into()));
        };
        // Read first, poll only when nothing is there (as `Channel` does), so that no
        // read waits past its deadline.
        // SAFETY: integer fcntl on the pipe this process holds; no memory passed.
        let set = unsafe { libc::fcntl(from.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        if set != 0 {
            return Err(io("making plugjail host's stdout non-blocking")(
                std::io::Error::last_os_error(),
            ));
        }
        let wire = Wire {
            child,
            to: Mutex::new(to),
            from: Mutex::new(BufReader::with_capacity(64 << 10, from)),
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
        };
        wire.wait_ready(id, jails)?;
        Ok(wire)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn wait_ready(&self, id: &str, jails: usize) -> Result<(), BenchError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut from = lock(&self.from);
        let mut ready = None;
        while ready.is_none_or(|n| n < jails) {
            let (kind, _, body) = read_frame(&mut from, deadline)?;
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if kind == FrameType::Hello as u16 {
                let idle = json["plugins"]
                    .as_array()
                    .and_then(|ps| ps.iter().find(|p| p["id"] == id))
                    .and_then(|p| p["idle"].as_u64())
                    .unwrap_or(0);
                ready = Some(usize::try_from(idle).unwrap_or(0));
            } else if kind == FrameType::Event as u16
                && json["event"] == "jail_ready"
                && json["plugin"] == id
            {
                ready = Some(ready.unwrap_or(0) + 1);
            } else if kind == FrameType::Event as u16 && json["event"] == "jail_ended" {
                return Err(wire_error(format!("a jail ended while starting: {json}")));
            }
        }
        Ok(())
    }

    /// One call; its output.
    pub fn call(&self, plugin: &str, method: &str, input: &[u8]) -> Result<Vec<u8>, BenchError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode_request(&Request::Call {
            id,
            plugin,
            method,
            input,
        })
        .map_err(|e| wire_error(e.to_string()))?;
        lock(&self.to)
            .write_all(&frame)
            .map_err(io("writing a CALL to plugjail host"))?;
        let answer = self.answer(id)?;
        answer.map_err(|json| wire_error(format!("call {id} answered ERROR {json}")))
    }

    /// Waits for the answer to call `id`: left by another thread, or read by this one.
    fn answer(&self, id: u64) -> Result<Answer, BenchError> {
        loop {
            {
                let mut st = lock(&self.state);
                if let Some(a) = st.answers.remove(&id) {
                    st.waiting.remove(&id);
                    // Woken to read next, maybe, and leaving instead: pass the role on.
                    st.wake_reader();
                    return Ok(a);
                }
                if let Some(why) = &st.broken {
                    return Err(wire_error(why.clone()));
                }
                if st.reading {
                    st.waiting.insert(id, std::thread::current());
                    drop(st);
                    // Woken (or spuriously): look again.
                    std::thread::park();
                    continue;
                }
                st.reading = true;
                st.waiting.remove(&id);
            }
            let read = read_frame(&mut lock(&self.from), Instant::now() + CALL_TIMEOUT);
            let mut st = lock(&self.state);
            st.reading = false;
            let (got, answer) = match read {
                Ok((kind, got, body)) if kind == FrameType::Result as u16 => (got, Ok(body)),
                Ok((kind, got, body)) if kind == FrameType::Error as u16 => {
                    (got, Err(String::from_utf8_lossy(&body).into_owned()))
                }
                // Events, and anything newer: read on.
                Ok(_) => continue,
                Err(e) => {
                    st.broken = Some(e.to_string());
                    for t in st.waiting.values() {
                        t.unpark();
                    }
                    return Err(e);
                }
            };
            if got == id {
                st.wake_reader();
                return Ok(answer);
            }
            st.answers.insert(got, answer);
            if let Some(t) = st.waiting.get(&got) {
                t.unpark();
            }
        }
    }

    /// Ends the server as a client would (the end of its stdin), reads what it still
    /// sends (events of the jails ending) and checks its exit status.
    pub fn finish(self) -> Result<(), BenchError> {
        let Wire {
            mut child,
            to,
            from,
            ..
        } = self;
        drop(to);
        let mut from = from.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut rest = Vec::new();
        let _ = from.read_to_end(&mut rest);
        let status = child.wait().map_err(io("waitpid on plugjail host"))?;
        if status.success() {
            Ok(())
        } else {
            Err(BenchError::Exit {
                what: "plugjail host",
                status: status.to_string(),
            })
        }
    }
}

impl State {
    /// When nobody reads and threads wait, wakes one of them to read next. Every thread
    /// that leaves [`Wire::answer`] while others wait calls it, so a waiting thread is
    /// never left without a reader.
    fn wake_reader(&self) {
        if !self.reading
            && let Some(t) = self.waiting.values().next()
        {
            t.unpark();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads one frame, waiting for each part at most until `deadline`.
fn read_frame(from: &mut BufReader<ChildStdout>, deadline: Instant) -> Result<Frame, BenchError> {
    let mut header = [0u8; HEADER_LEN];
    read_exact(from, &mut header, deadline)?;
    let h = decode_header(&header).map_err(|e| wire_error(e.to_string()))?;
    let mut body = vec![0u8; h.len as usize];
    read_exact(from, &mut body, deadline)?;
    Ok((h.kind, h.id, body))
}

fn read_exact(
    from: &mut BufReader<ChildStdout>,
    mut buf: &mut [u8],
    deadline: Instant,
) -> Result<(), BenchError> {
    while !buf.is_empty() {
        match from.read(buf) {
            Ok(0) => return Err(wire_error("its stdout ended".into())),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                wait_readable(from.get_ref(), deadline)?;
            }
            Err(e) => return Err(io("reading plugjail host's stdout")(e)),
        }
    }
    Ok(())
}

fn wait_readable(from: &ChildStdout, deadline: Instant) -> Result<(), BenchError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(wire_error(
                "no frame in time (HELLO, a ready pool, or an answer)".into(),
            ));
        }
        let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        let mut pfd = libc::pollfd {
            fd: from.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd for the call's length of 1; the descriptor is
        // borrowed open for the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms.max(1)) };
        if n > 0 {
            return Ok(());
        }
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(io("poll on plugjail host's stdout")(e));
            }
        }
    }
}

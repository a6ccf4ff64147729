//! A test client of `plugjail host`: the server on stdin/stdout (or a socket), its frames
//! read by a thread, every wait bounded, the child killed if a test fails.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use plugjail::host::wire::codec::{FrameType, HEADER_LEN, Op, Request, encode_request};
use serde_json::Value;

use crate::common::{TempDir, manifest_dir, plugjail};

/// The longest any single wait in these tests lasts.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// One frame from the server.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u16,
    pub id: u64,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("frame body is not JSON ({e}): {self:?}"))
    }

    pub fn is(&self, t: FrameType) -> bool {
        self.kind == t as u16
    }

    /// The `kind` of an ERROR frame.
    pub fn error_kind(&self) -> String {
        assert!(
            self.is(FrameType::Error),
            "not an ERROR: {}",
            self.describe()
        );
        self.json()["kind"].as_str().unwrap_or("<none>").to_owned()
    }

    pub fn describe(&self) -> String {
        let name = FrameType::from_u16(self.kind).map_or("?", |t| t.name());
        format!(
            "{name} ({:#x}) id {} body {}",
            self.kind,
            self.id,
            String::from_utf8_lossy(&self.body)
        )
    }
}

/// A host configuration file: `(id, plugin .so, pool)` per plugin, under the default
/// profile.
pub fn config(dir: &TempDir, plugins: &[(&str, &Path, &str)]) -> PathBuf {
    let profile = manifest_dir().join("profiles/default.yaml");
    let quote = |p: &Path| serde_json::to_string(&p.display().to_string()).expect("json");
    let mut text = String::from("version: 1\nplugins:\n");
    for (id, so, pool) in plugins {
        text.push_str(&format!(
            "  - id: {id}\n    plugin: {}\n    profile: {}\n    pool: {pool}\n",
            quote(so),
            quote(&profile)
        ));
    }
    dir.write("host.yaml", text, 0o644)
}

/// Reads frames from `r` into a channel; `None` at the end (clean or not).
fn read_frames(mut r: impl Read + Send + 'static) -> Receiver<Option<Frame>> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        loop {
            let mut head = [0u8; HEADER_LEN];
            if r.read_exact(&mut head).is_err() {
                let _ = tx.send(None);
                return;
            }
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let kind = u16::from_le_bytes([head[4], head[5]]);
            assert_eq!(&head[6..8], &[0, 0], "server frame flags");
            let id = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
            let mut body = vec![0u8; len];
            if r.read_exact(&mut body).is_err() {
                let _ = tx.send(None);
                return;
            }
            if tx.send(Some(Frame { kind, id, body })).is_err() {
                return;
            }
        }
    });
    rx
}

/// One connection's frames: answers in order, events set aside.
pub struct Frames {
    rx: Receiver<Option<Frame>>,
    pub events: Vec<Value>,
    pub ended: bool,
}

impl Frames {
    pub fn new(r: impl Read + Send + 'static) -> Frames {
        Frames {
            rx: read_frames(r),
            events: Vec::new(),
            ended: false,
        }
    }

    /// The next frame that is not an EVENT, within `within`; `None` at the end of the
    /// stream (panics on a timeout).
    pub fn next_within(&mut self, within: Duration) -> Option<Frame> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Some(f)) if f.is(FrameType::Event) => {
                    assert_eq!(f.id, 0, "EVENT id");
                    self.events.push(f.json());
                }
                Ok(Some(f)) => return Some(f),
                Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                    self.ended = true;
                    return None;
                }
                Err(RecvTimeoutError::Timeout) => panic!("no frame within {within:?}"),
            }
        }
    }

    /// Nothing but events for `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) {
        let deadline = Instant::now() + quiet;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Some(f)) if f.is(FrameType::Event) => self.events.push(f.json()),
                Ok(Some(f)) => panic!("expected no answer yet, got {}", f.describe()),
                Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                    panic!("the stream ended")
                }
                Err(RecvTimeoutError::Timeout) => return,
            }
        }
    }

    pub fn next(&mut self) -> Frame {
        self.next_within(PATIENCE)
            .unwrap_or_else(|| panic!("the stream ended; events: {:?}", self.events))
    }

    /// The first frame: HELLO, its JSON.
    pub fn hello(&mut self) -> Value {
        let f = self.next();
        assert!(f.is(FrameType::Hello), "first frame: {}", f.describe());
        assert_eq!(f.id, 0);
        let v = f.json();
        assert_eq!(v["protocol"], 1, "{v}");
        v
    }

    /// Reads until an event `kind` of `plugin` has arrived (panics on an answer).
    pub fn wait_event(&mut self, plugin: &str, kind: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.events_of(plugin, kind) == 0 {
            assert!(
                Instant::now() < deadline,
                "no {kind} event: {:#?}",
                self.events
            );
            self.expect_silence(Duration::from_millis(20));
        }
    }

    /// Every frame until the end of the stream (events set aside).
    pub fn rest(&mut self) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = self.next_within(PATIENCE) {
            out.push(f);
        }
        out
    }

    /// Events of `kind` for `plugin` seen so far.
    pub fn events_of(&self, plugin: &str, kind: &str) -> usize {
        self.events
            .iter()
            .filter(|e| e["plugin"] == plugin && e["event"] == kind)
            .count()
    }
}

pub fn call(id: u64, plugin: &str, method: &str, input: &[u8]) -> Vec<u8> {
    encode_request(&Request::Call {
        id,
        plugin,
        method,
        input,
    })
    .expect("encode CALL")
}

pub fn cancel(id: u64) -> Vec<u8> {
    encode_request(&Request::Cancel { id }).expect("encode CANCEL")
}

pub fn shutdown() -> Vec<u8> {
    encode_request(&Request::Shutdown).expect("encode SHUTDOWN")
}

/// `plugjail host` on stdin/stdout.
pub struct Server {
    child: Child,
    input: Option<ChildStdin>,
    pub frames: Frames,
    stderr: Option<JoinHandle<String>>,
}

/// How the server ended.
pub struct Ended {
    pub status: ExitStatus,
    pub stderr: String,
}

impl Server {
    pub fn start(config: &Path) -> Server {
        Server::start_with(config, &[])
    }

    pub fn start_with(config: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(plugjail())
            .arg("host")
            .arg("--config")
            .arg(config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn plugjail host");
        let out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Server {
            input: child.stdin.take(),
            child,
            frames: Frames::new(out),
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    /// Writes bytes; false if the server no longer reads.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        match self.input.as_mut() {
            Some(w) => w.write_all(bytes).and_then(|()| w.flush()).is_ok(),
            None => false,
        }
    }

    /// Asks for `plugin`'s status (CONTROL ids from 1 << 62 up) until `idle` jails are
    /// ready: a pool with no queue refuses calls before its jails are up.
    pub fn wait_idle(&mut self, plugin: &str, idle: u64) {
        let deadline = Instant::now() + PATIENCE;
        for id in (1u64 << 62).. {
            let req = Request::Control {
                id,
                op: Op::Status,
                plugin,
                upgrade: None,
            };
            self.send(&encode_request(&req).expect("encode CONTROL"));
            let f = self.frames.next();
            assert!(f.is(FrameType::Done) && f.id == id, "{}", f.describe());
            let status = &f.json()["plugins"][0];
            if status["idle"].as_u64() >= Some(idle) && status["state"] == "running" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{plugin}: not {idle} idle jails: {}",
                f.describe()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn close_input(&mut self) {
        self.input = None;
    }

    /// Waits for the process to exit (killing it after [`PATIENCE`]).
    pub fn wait(mut self) -> Ended {
        self.input = None;
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("plugjail host did not exit within {PATIENCE:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Ended { status, stderr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A test that failed half-way: no server outlives it.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

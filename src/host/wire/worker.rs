//! Admitting a request and running it on a worker thread (the connection's, kept between
//! requests: `threads.rs`): one thread per CALL or CONTROL in flight, at most [`Shared::limit`] calls and [`CONTROLS_IN_FLIGHT`] controls
//! in flight per connection (apart, so that a connection whose calls fill the pools can
//! still ask for the status).

use std::sync::Arc;

use serde_json::json;

use super::codec::{Op, UpgradeTo};
use super::conn::{Conn, State};
use super::reply;
use super::shared::Shared;
use crate::host::{CancelToken, Host, HostCallError, HostError};

/// CONTROL requests one connection may have in flight.
pub const CONTROLS_IN_FLIGHT: usize = 8;

/// Worker threads a connection may have, as a multiple of its in-flight limits: beyond the
/// requests in flight, workers whose answer waits for a client that does not read.
const MAX_WORKERS_PER_LIMIT: usize = 2;

/// Admits a CALL and starts its worker, or answers it at once.
pub fn call(
    shared: &Arc<Shared>,
    conn: &Arc<Conn>,
    id: u64,
    plugin: String,
    method: String,
    input: Vec<u8>,
) {
    let token = CancelToken::new();
    let run = {
        let token = token.clone();
        move |shared: &Shared| {
            let res = shared
                .with_host(|h| h.call_with(&plugin, &method, &input, Some(&token)))
                .unwrap_or(Err(HostCallError::ShuttingDown));
            match res {
                Ok(output) => reply::result(id, &output),
                // Cancelled by the server's stop, not by the client.
                Err(HostCallError::Cancelled) if shared.stopping() => {
                    reply::call_error(id, &HostCallError::ShuttingDown)
                }
                Err(e) => reply::call_error(id, &e),
            }
        }
    };
    start(shared, conn, id, Some(token), run);
}

/// Admits a CONTROL request and starts its worker, or answers it at once.
pub fn control(
    shared: &Arc<Shared>,
    conn: &Arc<Conn>,
    id: u64,
    op: Op,
    plugin: String,
    upgrade: Option<UpgradeTo>,
) {
    let run = move |shared: &Shared| {
        let res = shared
            .with_host(|h| run_control(h, op, &plugin, upgrade))
            .unwrap_or_else(|| Err(Refused::ShuttingDown));
        match res {
            Ok(body) => reply::done(id, &body),
            Err(Refused::Host(e)) => reply::host_error(id, &e),
            Err(Refused::ShuttingDown) => reply::call_error(id, &HostCallError::ShuttingDown),
        }
    };
    start(shared, conn, id, None, run);
}

enum Refused {
    Host(HostError),
    ShuttingDown,
}

fn run_control(
    h: &Host,
    op: Op,
    plugin: &str,
    upgrade: Option<UpgradeTo>,
) -> Result<serde_json::Value, Refused> {
    let id = plugin.to_owned();
    match op {
        Op::Pause => h.pause(plugin),
        Op::Resume => h.resume(plugin),
        Op::Release => h.release(plugin),
        Op::Upgrade => match upgrade {
            Some(to) => h.upgrade(plugin, to.plugin, to.profile),
            // The codec gives every upgrade its target.
            None => Err(HostError::Invalid {
                id,
                message: "upgrade without a target".into(),
            }),
        },
        Op::Status => {
            let mut all = h.status();
            if !plugin.is_empty() {
                all.retain(|s| s.id == plugin);
                if all.is_empty() {
                    return Err(Refused::Host(HostError::UnknownPlugin { id }));
                }
            }
            return Ok(json!({ "op": op.name(), "plugins": all }));
        }
    }
    .map(|()| json!({ "op": op.name(), "plugin": plugin }))
    .map_err(Refused::Host)
}

/// Enters `id` in the connection's table and runs `run` on a worker thread, which queues
/// the answer `run` returns; or answers at once (`shutting_down`, `duplicate_id`, `busy`).
fn start<F>(shared: &Arc<Shared>, conn: &Arc<Conn>, id: u64, token: Option<CancelToken>, run: F)
where
    F: FnOnce(&Shared) -> Vec<u8> + Send + 'static,
{
    {
        let mut s = conn.lock();
        // Under the connection's lock, which the server's stop takes after setting the
        // flag: a request admitted here is in the table its cancel sweep reads.
        let refusal = if shared.stopping() {
            Some(reply::call_error(id, &HostCallError::ShuttingDown))
        } else if s.calls.contains_key(&id) {
            let message = format!("id {id} is in flight already; that request goes on");
            Some(reply::error(id, "duplicate_id", &message))
        } else {
            over_limit(&s, shared.limit, token.is_some())
                .map(|message| reply::error(id, "busy", &message))
        };
        if let Some(frame) = refusal {
            drop(s);
            conn.send(frame);
            return;
        }
        s.calls.insert(id, token);
        s.workers += 1;
    }
    let (shared2, conn2) = (shared.clone(), conn.clone());
    let spawned = conn.threads.submit(Box::new(move || {
        let frame = run(&shared2);
        finish(&conn2, id, frame);
    }));
    if let Err(e) = spawned {
        let message = format!("cannot start a worker thread: {e}");
        finish(conn, id, reply::error(id, "internal", &message));
    }
}

/// Why one more call (or control) would be too many, if it would.
fn over_limit(s: &State, limit: usize, is_call: bool) -> Option<String> {
    let calls = s.calls.values().filter(|t| t.is_some()).count();
    let (what, now, most) = if is_call {
        ("calls", calls, limit)
    } else {
        ("controls", s.calls.len() - calls, CONTROLS_IN_FLIGHT)
    };
    let workers = (limit + CONTROLS_IN_FLIGHT) * MAX_WORKERS_PER_LIMIT;
    if now >= most {
        Some(format!(
            "{now} {what} are in flight on this connection (the most: {most})"
        ))
    } else if s.workers >= workers {
        Some(format!(
            "{} answers wait for this connection to read them",
            s.workers - s.calls.len()
        ))
    } else {
        None
    }
}

/// Frees the id, queues the answer, and counts the worker out: in that order, so the id
/// is free before the client can see the answer, and waiting for idle workers waits for
/// every answer to be queued.
fn finish(conn: &Conn, id: u64, frame: Vec<u8>) {
    conn.lock().calls.remove(&id);
    conn.send(frame);
    conn.worker_done();
}

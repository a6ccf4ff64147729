//! The worker threads of one connection, kept between requests: a request goes to an idle
//! thread when there is one, else to a new thread (so requests in flight never wait for
//! each other); a thread idle for [`IDLE_EXIT`] ends, and all end when the connection
//! does. Starting a thread per request cost about as much as the call itself.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a thread waits for another request before it ends.
const IDLE_EXIT: Duration = Duration::from_secs(30);

pub type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
pub struct Threads {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    idle: usize,
    closed: bool,
}

impl Threads {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `job` on an idle thread, or a new one. When no thread can start, `job` is
    /// dropped unrun and the error says why.
    pub fn submit(self: &Arc<Self>, job: Job) -> std::io::Result<()> {
        let mut s = self.lock();
        if s.idle > s.jobs.len() {
            s.jobs.push_back(job);
            self.ready.notify_one();
            return Ok(());
        }
        drop(s);
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("host-wire-worker".into())
            .spawn(move || me.run(Some(job)))
            .map(drop)
    }

    /// Ends every idle thread now, and every busy one after its request.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    fn run(&self, mut job: Option<Job>) {
        loop {
            if let Some(j) = job.take() {
                j();
            }
            let mut s = self.lock();
            s.idle += 1;
            while s.jobs.is_empty() && !s.closed {
                let (next, timeout) = self
                    .ready
                    .wait_timeout(s, IDLE_EXIT)
                    .unwrap_or_else(|p| p.into_inner());
                s = next;
                if timeout.timed_out() && s.jobs.is_empty() {
                    break;
                }
            }
            s.idle -= 1;
            match s.jobs.pop_front() {
                Some(j) => job = Some(j),
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::mpsc;

    #[test]
    fn an_idle_thread_is_reused_and_requests_never_wait_for_each_other() {
        let t = Arc::new(Threads::default());
        let (tx, rx) = mpsc::channel();
        let mut ids = HashSet::new();
        for _ in 0..3 {
            let tx = tx.clone();
            t.submit(Box::new(move || {
                let _ = tx.send(std::thread::current().id());
            }))
            .expect("submit");
            ids.insert(rx.recv().expect("ran"));
            // Let the thread park again before the next request.
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(ids.len(), 1, "one request at a time needs one thread");
        // A request blocked forever does not hold up the next one.
        let (go_tx, go_rx) = mpsc::channel::<()>();
        t.submit(Box::new(move || {
            let _ = go_rx.recv();
        }))
        .expect("submit");
        let (done_tx, done_rx) = mpsc::channel();
        t.submit(Box::new(move || {
            let _ = done_tx.send(());
        }))
        .expect("submit");
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the second request ran while the first was blocked");
        let _ = go_tx.send(());
        t.close();
    }
}

//! A small plugin host in Rust: the two example plugins and a misbehaving one
//! (examples/host/host.yaml), called from this program, with every lifecycle event printed
//! as it happens. Run it with `scripts/host-example.sh` (which builds plugjail and the
//! plugins first); docs/host.md explains what you see.

use std::error::Error;
use std::path::Path;

use plugjail::host::{Host, HostCallError, config};
use plugjail::text::escape;

fn main() -> Result<(), Box<dyn Error>> {
    let cfg = config::load(Path::new("examples/host/host.yaml")).map_err(|e| e.to_string())?;
    let host = Host::start(cfg)?;
    let events = host.events();
    let printer = std::thread::spawn(move || {
        for e in events {
            let Ok(mut json) = serde_json::to_value(&e) else {
                continue;
            };
            // A jail_ended event carries the jail's whole verdict; its outcome and
            // message are enough here.
            if let Some(verdict) = json.as_object_mut().and_then(|o| o.remove("verdict"))
                && let Some(message) = verdict.get("message")
            {
                json["message"] = message.clone();
            }
            // JSON escapes control characters but not bidi overrides, and an event may
            // carry the plugin's own words (its HELLO version, a verdict's message).
            println!("  event {}", escape(json.to_string().as_bytes()));
        }
    });

    call(&host, "hello", "greet", b"world");
    call(&host, "csv2json", "convert", b"name,lang\nada,C++\n");
    // Every third call of a flaky jail crashes: the host restarts it after a backoff,
    // and the next call finds a fresh jail.
    for _ in 0..4 {
        call(&host, "flaky", "work", b"");
    }
    // A violation quarantines the plugin: calls are refused until the host releases it.
    call(&host, "flaky", "escape", b"");
    call(&host, "flaky", "work", b"");
    host.release("flaky")?;
    call(&host, "flaky", "work", b"");
    // Pause freezes every jail of a plugin; resume thaws them.
    host.pause("hello")?;
    host.resume("hello")?;
    call(&host, "hello", "greet", b"again");

    host.shutdown();
    // The event stream ends once the host and all its jails are gone.
    let _ = printer.join();
    Ok(())
}

/// Calls and prints the answer. What a plugin sends is untrusted text: escaped.
fn call(host: &Host, plugin: &str, method: &str, input: &[u8]) {
    match host.call(plugin, method, input) {
        Ok(out) => println!("{plugin}.{method} → {}", escape(&out)),
        Err(e @ HostCallError::Failed { .. }) => {
            println!(
                "{plugin}.{method} → plugin error: {}",
                escape(e.to_string().as_bytes())
            )
        }
        Err(e) => println!("{plugin}.{method} → {} ({e})", e.kind_name()),
    }
}

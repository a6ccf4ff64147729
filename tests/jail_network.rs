//! Network: a host loopback listener and a host abstract unix socket are unreachable,
//! through seccomp, Landlock's port rules and scopes, and the network namespace alone.

mod common;

use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};

use common::{
    Failures, TempDir, extend_profile, jail, jail_modes, label, profile_for, shipped_profile,
    unique,
};

// ---------------------------------------------------------------------------------------
// Network

#[test]
fn tcp_to_a_host_loopback_listener_fails() {
    let modes = jail_modes();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = TempDir::new("profiles", 0o755);
    // Landlock allows this port: the network namespace alone must keep the host away.
    let open_port = extend_profile(
        &dir,
        "ci-tests-port",
        "ci-tests",
        &format!("landlock:\n  tcp_connect: [{port}]\n"),
    );
    let args = ["tcp_connect", &port.to_string()].map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in ["default", "strict"] {
            // No socket syscalls at all.
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(
                &label(profile, &args),
                &run,
                run.check_seccomp_violation("socket"),
            );
        }
        // Landlock's tcp_connect list does not name the port.
        let run = jail(mode, &shipped_profile("ci-tests"), &args);
        failures.check(
            &label("ci-tests", &args),
            &run,
            run.check_denied(&["EACCES"]),
        );
        // The jail's loopback is its own: nothing listens there.
        let run = jail(mode, &open_port, &args);
        failures.check(
            &label("ci-tests + Landlock port", &args),
            &run,
            run.check_denied(&["ECONNREFUSED"]),
        );
    }
    if let Ok((_, peer)) = listener.accept() {
        failures.fail(format!(
            "the host listener accepted a connection from {peer}"
        ));
    }
    failures.finish();
}

#[test]
fn a_host_abstract_unix_socket_is_unreachable() {
    let modes = jail_modes();
    let name = unique("plugjail-test-abstract");
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).expect("bind an abstract socket");
    listener.set_nonblocking(true).unwrap();
    let dir = TempDir::new("profiles", 0o755);
    // Sharing the host's network namespace: Landlock's abstract-socket scope alone must
    // refuse.
    let shared_net = extend_profile(
        &dir,
        "ci-tests-host-net",
        "ci-tests",
        "namespaces:\n  net: false\n",
    );
    let args = ["abstract_connect", name.as_str()];
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in ["default", "strict"] {
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(
                &label(profile, &args),
                &run,
                run.check_seccomp_violation("socket"),
            );
        }
        // Abstract names live in the network namespace: the jail's has none of the host's.
        let run = jail(mode, &shipped_profile("ci-tests"), &args);
        failures.check(
            &label("ci-tests", &args),
            &run,
            run.check_denied(&["ECONNREFUSED"]),
        );
        let run = jail(mode, &shared_net, &args);
        failures.check(
            &label("ci-tests without net namespace", &args),
            &run,
            run.check_denied(&["EPERM"]),
        );
    }
    if listener.accept().is_ok() {
        failures.fail("the host abstract socket accepted a connection".into());
    }
    failures.finish();
}

//! A network grant is exactly one server address, and a server that
//! accepts and never answers cannot hold a call past its timeout.

use super::*;
use std::net::TcpListener;

/// A server that accepts connections and never says a word.
fn silent_server() -> (
    TcpListener,
    std::thread::JoinHandle<()>,
    std::net::SocketAddr,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepting = listener.try_clone().unwrap();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in accepting.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
            if held.len() > 8 {
                break;
            }
        }
    });
    (listener, handle, addr)
}

fn networked(
    fixture: &Fixture,
    attack: &str,
    option: &str,
    server: std::net::SocketAddr,
    target: std::net::SocketAddr,
) -> Store {
    let mut config = fixture.config(attack);
    config.options.push((option.into(), target.to_string()));
    config.network = Some(server);
    Store::open(config).unwrap()
}

#[test]
fn a_server_that_never_answers_cannot_outlast_the_timeout() {
    let (_listener, _accepting, addr) = silent_server();
    let fixture = Fixture::new();
    let store = networked(&fixture, "tcp-silent", "server", addr, addr);
    store.append(vec![record("event", 1.0)]).unwrap();
    let started = Instant::now();
    let err = store.append(vec![record("attack", 2.0)]).unwrap_err();
    let elapsed = started.elapsed();
    let message = err.to_string();
    assert!(
        elapsed >= Duration::from_millis(450),
        "{elapsed:?}: {message}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "took {elapsed:?}: {message}"
    );
    let (_, operation, cause) = fault_parts(err);
    assert_eq!(operation, "append");
    assert!(cause.contains("timeout of 500ms"), "{cause}");
    store.append(vec![record("event", 3.0)]).unwrap();
    assert_eq!(timestamps(&store), [3.0]);
}

#[test]
fn only_the_granted_address_can_be_reached() {
    let (_granted, _a, granted) = silent_server();
    let (_other, _b, other) = silent_server();
    let fixture = Fixture::new();
    // A second port on the same loopback address is refused.
    let store = networked(&fixture, "tcp-elsewhere", "other", granted, other);
    let message = store
        .append(vec![record("attack", 1.0)])
        .unwrap_err()
        .to_string();
    assert!(message.contains(&format!("connect {other}")), "{message}");
    assert!(!message.contains("CONNECTED"), "{message}");
    drop(store);
    // The granted address itself works (the control: refusals are the sandbox's).
    let store = networked(&fixture, "tcp-elsewhere", "other", granted, granted);
    let message = store
        .append(vec![record("attack", 1.0)])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&format!("CONNECTED to {granted}")),
        "{message}"
    );
    drop(store);
    // Without a grant nothing is reachable.
    let mut config = fixture.config("tcp-elsewhere");
    config.options.push(("other".into(), granted.to_string()));
    let store = Store::open(config).unwrap();
    let message = store
        .append(vec![record("attack", 1.0)])
        .unwrap_err()
        .to_string();
    assert!(message.contains(&format!("connect {granted}")), "{message}");
}

//! A live feed that is not livegames, for trying `load`, `smoke` and `contract record`
//! against someone else's server (README "Testing your own server"). It is the same
//! server the integration tests use (tests/support/foreign.rs).
//!
//! ```text
//! cargo run --example foreign_feed -- token      # wants a bearer token and a subprotocol
//! cargo run --example foreign_feed -- tls        # TLS with a private CA (made with openssl)
//! cargo run --example foreign_feed -- subscribe  # its own protocol and field names
//! cargo run --example foreign_feed -- session    # connect, then subscribe, each acked
//! cargo run --example foreign_feed -- socketio   # socket.io (Engine.IO v4)
//! cargo run --example foreign_feed -- stomp      # STOMP 1.2 over WebSocket
//! ```
//!
//! It prints where it listens and what it wants, then serves until Ctrl-C.

#[path = "../tests/support/foreign.rs"]
#[allow(dead_code)] // the tests' server has more behaviours than this example starts
mod foreign;

#[path = "../tests/support/fake.rs"]
#[allow(dead_code)] // the tests' servers have more behaviours than this example starts
mod fake;

use foreign::{Foreign, Stream, TestPki};

/// Unix time in microseconds (foreign.rs takes the test harness's name for it).
use livegames::clock::unix_micros as now_micros;

#[tokio::main]
async fn main() {
    let kind = std::env::args().nth(1).unwrap_or_default();
    if let Some(()) = protocol_server(&kind).await {
        return;
    }
    let pki;
    let (foreign, scheme, wants) = match kind.as_str() {
        "token" => (
            Foreign {
                token: Some("s3cret"),
                subprotocol: Some("feed.v2"),
                ..Foreign::default()
            },
            "ws",
            "-H 'Authorization: Bearer s3cret' --subprotocol feed.v2".to_owned(),
        ),
        "tls" => {
            pki = TestPki::new("example");
            let wants = format!("--cacert {}", pki.ca_pem.display());
            (
                Foreign {
                    tls: Some(pki.server.clone()),
                    ..Foreign::default()
                },
                "wss",
                wants,
            )
        }
        "subscribe" => (
            Foreign {
                stream: Stream::Subscribed,
                ..Foreign::default()
            },
            "ws",
            r#"--subscribe '{"op":"subscribe","game":"{game_id}"}' --seq-field /n --ts-field /t --ts-unit ms"#.to_owned(),
        ),
        _ => {
            eprintln!("usage: foreign_feed token|tls|subscribe|session|socketio|stomp");
            std::process::exit(2);
        }
    };
    let addr = foreign::start(foreign).await;
    let host = if scheme == "wss" {
        "localhost"
    } else {
        "127.0.0.1"
    };
    println!("listening on {scheme}://{host}:{}", addr.port());
    println!("streams at /ws/live/g1; a client needs: {wants}");
    let _ = tokio::signal::ctrl_c().await;
}

/// The servers that speak a protocol of their own: a connect-then-subscribe session
/// (scenarios/session-example.toml drives it) and socket.io. None for other kinds.
async fn protocol_server(kind: &str) -> Option<()> {
    let every = std::time::Duration::from_millis(100);
    let (addr, wants) = match kind {
        "session" => {
            let (addr, _) = fake::start_connect_then_subscribe(every).await;
            (
                addr,
                "the session of scenarios/session-example.toml".to_owned(),
            )
        }
        "socketio" => {
            let (addr, _) = fake::start_socket_io(every).await;
            (addr, "--protocol socketio --sio-event tick".to_owned())
        }
        "stomp" => {
            let (addr, _) = fake::start_stomp(every).await;
            (
                addr,
                "the session of scenarios/stomp-example.toml".to_owned(),
            )
        }
        _ => return None,
    };
    println!(
        "listening on ws://127.0.0.1:{}; a client needs: {wants}",
        addr.port()
    );
    let _ = tokio::signal::ctrl_c().await;
    Some(())
}

//! A green run means that what it claims was measured was measured: every frame is
//! counted by what it is, and a run whose frames could not be read fails, saying what
//! arrived instead.

use std::time::Duration;

use livegames::client::ConnectOptions;
use livegames::load::plan::budget::Budget;
use livegames::load::results::summary::LoadSummary;
use livegames::load::session::VuConfig;

use crate::support::fake::{self, Behaviour};
use crate::support::loads::{check, load_with};
use crate::support::peers::{peer_installed, spawn_peer};

fn vu() -> VuConfig {
    VuConfig {
        connect: ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            ..ConnectOptions::default()
        },
        idle_timeout: Duration::from_secs(10),
        ..VuConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frames_are_counted_and_a_run_of_them_fails_the_frames_check() {
    let every = Duration::from_millis(20);
    let addr = fake::start(Behaviour::Binary { every, json: false }).await;
    let s = load_with(format!("ws://{addr}/"), 2, Duration::from_secs(2), vu()).await;
    let c = &s.totals.counts;
    let unreadable = c.unreadable.get("binary").copied().unwrap_or(0);
    // Two users, ~50 frames a second each: nine in ten are binary.
    assert!(c.frames > 120, "every frame counted: {c:?}");
    assert_eq!(c.binary_frames, unreadable, "{c:?}");
    assert!(unreadable * 10 >= c.frames * 8, "{c:?}");
    assert!(c.bytes >= unreadable * 7, "binary bytes counted: {c:?}");
    let frames = check(&s, "frames");
    assert!(!frames.passed, "{frames:?}");
    assert!(
        frames.observed.contains("frames could not be read (")
            && frames.observed.contains(" binary)")
            && frames
                .observed
                .contains("the first was 7 bytes: 82 a1 6e cd"),
        "{frames:?}"
    );
    assert_eq!(c.unreadable_examples.len(), 5, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_in_binary_frames_is_read_like_text() {
    let every = Duration::from_millis(20);
    let addr = fake::start(Behaviour::Binary { every, json: true }).await;
    let s = load_with(format!("ws://{addr}/"), 2, Duration::from_secs(2), vu()).await;
    let c = &s.totals.counts;
    assert!(c.binary_frames > 100, "{c:?}");
    assert!(c.unreadable.is_empty(), "{c:?}");
    let frames = check(&s, "frames");
    assert!(frames.passed, "{frames:?}");
    assert_eq!(
        frames.observed,
        format!("{} frames received and read", c.frames)
    );
    assert!(
        s.latency["delivery"].count >= c.frames - 4,
        "{:?}",
        s.latency
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_packets_fail_the_frames_check_and_are_named() {
    let every = Duration::from_millis(20);
    let addr = fake::start(Behaviour::SocketIoLike { every }).await;
    let s = load_with(format!("ws://{addr}/"), 2, Duration::from_secs(2), vu()).await;
    let c = &s.totals.counts;
    assert_eq!(
        c.unreadable.get("not_json").copied(),
        Some(c.frames),
        "{c:?}"
    );
    assert!(
        !s.latency.contains_key("delivery"),
        "no delivery was measured: {:?}",
        s.latency
    );
    let frames = check(&s, "frames");
    assert!(!frames.passed, "{frames:?}");
    assert!(
        frames.observed.starts_with(&format!(
            "{0} of {0} frames could not be read ({0} not JSON): the first was `0{{\"sid\"",
            c.frames
        )) && frames.observed.contains("which looks like socket.io"),
        "{frames:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_server_drops_fail_the_run_unless_they_come_back_or_drops_are_allowed() {
    let addr = fake::start(Behaviour::CloseAfter {
        after: Duration::from_millis(300),
        code: 1011,
    })
    .await;
    let url = format!("ws://{addr}/");
    let s = load_with(url.clone(), 4, Duration::from_secs(2), vu()).await;
    let stayed = check(&s, "stayed");
    assert!(!stayed.passed, "{stayed:?}");
    assert_eq!(
        stayed.observed,
        "4 of 4 users lost their connection and did not get it back (4 close_1011)"
    );
    assert_eq!(s.totals.counts.users_dropped, 4);

    // Allowed: reported, not failed.
    let s = load_with(
        url.clone(),
        4,
        Duration::from_secs(2),
        VuConfig {
            drops_allowed: true,
            ..vu()
        },
    )
    .await;
    let stayed = check(&s, "stayed");
    assert!(stayed.passed, "{stayed:?}");
    assert!(
        stayed.observed.ends_with("(allowed: --allow-drops)"),
        "{stayed:?}"
    );

    // Reconnecting users come back each time: they stayed.
    let s = load_with(
        url,
        4,
        Duration::from_millis(1500),
        VuConfig {
            reconnect: Some(livegames::retry::Backoff {
                base: Duration::from_millis(20),
                max: Duration::from_millis(50),
            }),
            ..vu()
        },
    )
    .await;
    let stayed = check(&s, "stayed");
    assert!(stayed.passed, "{stayed:?} {:?}", s.totals.counts);
    assert!(s.totals.counts.disconnects >= 8, "{:?}", s.totals.counts);
}

/// After a backend restart behind a proxy (every handshake answered 502 for a while),
/// every user is back: reconnect_success is 100 %, whatever the retries; they count
/// apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_success_is_lost_connections_that_came_back_not_retries() {
    let addr = fake::start_restarting(Duration::from_millis(500), Duration::from_millis(600)).await;
    let config = VuConfig {
        reconnect: Some(livegames::retry::Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(100),
        }),
        ..vu()
    };
    let s = load_with(
        format!("ws://{addr}/"),
        4,
        Duration::from_millis(2500),
        config,
    )
    .await;
    let c = &s.totals.counts;
    assert_eq!((c.disconnects, c.reconnect_successes), (4, 4), "{c:?}");
    assert!(c.reconnect_attempts > 8, "retries during the outage: {c:?}");
    assert!(
        c.errors.get("handshake_502").copied().unwrap_or(0) > 4,
        "{c:?}"
    );
    let budget: Budget = "reconnect_success>=99%".parse().unwrap();
    let r = budget.evaluate(&s);
    assert!(r.passed, "{r:?}");
    assert_eq!(
        r.measured,
        format!(
            "100.00% (4 of 4 lost connections came back; {} attempts)",
            c.reconnect_attempts
        )
    );
    assert!(check(&s, "stayed").passed, "{:?}", s.checks);
    // Errors are a share of attempts and frames: under 100 % however many retries.
    let r = "errors<1%".parse::<Budget>().unwrap().evaluate(&s);
    let over = c.connect_attempts + c.frames;
    assert!(
        r.measured.ends_with(&format!(
            " errors of {} attempts + {} frames)",
            c.connect_attempts, c.frames
        )),
        "{r:?}"
    );
    let errors: u64 = c.errors.values().sum();
    assert!(errors <= over, "{c:?}");
}

/// A server that takes every handshake and closes at once (a broker refusing by
/// closing) is not hammered: the wait between attempts grows as for a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_at_once_gets_backed_off_attempts() {
    let addr = fake::start(Behaviour::AcceptThenClose).await;
    let config = VuConfig {
        reconnect: Some(livegames::load::session::config::RECONNECT_BACKOFF),
        ..vu()
    };
    let s = load_with(format!("ws://{addr}/"), 10, Duration::from_secs(3), config).await;
    let c = &s.totals.counts;
    // 100 ms doubling (each wait jittered to between half and all of it): at most
    // seven attempts each in 3 s; reset after every close it would be some thirty.
    assert!(c.connect_attempts >= 30, "{c:?}");
    assert!(c.connect_attempts <= 70, "{c:?}");
    assert!(!check(&s, "frames").passed);
}

/// Each error says what happened: the server's words on a refused handshake, a hint
/// at a bare host's 404, a close's code and reason, a connection dropped without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_the_server_said_and_did() {
    let said = |s: &LoadSummary, kind: &str| {
        s.totals
            .counts
            .error_examples
            .get(kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} example: {:?}", s.totals.counts))
    };
    let run = Duration::from_millis(600);
    let nginx = fake::start_refusing(
        "400 Bad Request",
        "Connection header did not include 'upgrade'\n\u{1b}[2J<more>",
    )
    .await;
    let s = load_with(format!("ws://{nginx}/ws/live/1"), 1, run, vu()).await;
    assert_eq!(
        said(&s, "handshake_400"),
        "the server answered the upgrade with HTTP 400: Connection header did not include 'upgrade'"
    );

    let bare = fake::start_refusing("404 Not Found", "").await;
    let s = load_with(format!("ws://{bare}/"), 1, run, vu()).await;
    assert!(
        said(&s, "handshake_404").contains("add the stream's path, e.g. /ws/live/{game_id}"),
        "{s:?}",
        s = s.totals.counts
    );
    let s = load_with(format!("ws://{bare}/feed"), 1, run, vu()).await;
    assert_eq!(
        said(&s, "handshake_404"),
        "the server answered the upgrade with HTTP 404"
    );

    let closing = fake::start(Behaviour::CloseAfter {
        after: Duration::from_millis(100),
        code: 1011,
    })
    .await;
    let s = load_with(format!("ws://{closing}/"), 1, run, vu()).await;
    assert_eq!(said(&s, "close_1011"), "closed with 1011: test");

    let vanishing = fake::start(Behaviour::Vanish {
        after: Duration::from_millis(100),
    })
    .await;
    let s = load_with(format!("ws://{vanishing}/"), 1, run, vu()).await;
    let (kind, example) = s.totals.counts.error_examples.iter().next().unwrap();
    assert!(
        example.contains("without a close frame") || example.contains("reset by the peer"),
        "{kind}: {example}"
    );
    let text = s.render_text();
    assert!(text.contains(&format!("    {kind}: {example}")), "{text}");
}

/// socket.io: the namespace connect (with auth), the server's pings answered, `tick`
/// events measured as frames (seq and ts read from their data), other events passed
/// over, and the subscribe message emitted once the namespace has accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_events_are_measured_and_the_protocol_is_spoken() {
    use livegames::client::template::Template;
    use livegames::load::session::link::Protocol;
    use livegames::load::session::socketio::{SocketIoOptions, engine_io_url};
    let (addr, seen) = fake::start_socket_io(Duration::from_millis(20)).await;
    let config = VuConfig {
        protocol: Protocol::Socketio,
        socketio: SocketIoOptions {
            auth: Some(r#"{"token":"t1"}"#.into()),
            event: Some("tick".into()),
            emit: "subscribe".into(),
            ..SocketIoOptions::default()
        },
        subscribe: Some(Template::parse(r#"{"game":"{game_id}","user":{user}}"#).unwrap()),
        ..vu()
    };
    let url = engine_io_url(&url::Url::parse(&format!("ws://{addr}")).unwrap());
    assert_eq!(url.path(), "/socket.io/");
    let s = load_with(url.to_string(), 2, Duration::from_secs(2), config).await;
    let c = &s.totals.counts;
    assert!(c.frames > 100, "{c:?}");
    assert!(
        c.unreadable.is_empty(),
        "chat events are passed over: {c:?}"
    );
    assert_eq!((c.lost, c.duplicates), (Some(0), Some(0)), "{c:?}");
    assert!(
        s.latency["delivery"].count >= c.frames - 2,
        "{:?}",
        s.latency
    );
    assert!(
        s.checks.iter().all(|c| c.passed),
        "{:?} {:?}",
        s.checks,
        c.error_examples
    );
    let paths = seen.paths.lock().unwrap().clone();
    assert_eq!(paths, ["/socket.io/?EIO=4&transport=websocket"; 2]);
    let connects = seen.connects.lock().unwrap().clone();
    assert_eq!(connects, [r#"40{"token":"t1"}"#; 2]);
    let emits = seen.emits.lock().unwrap().clone();
    assert_eq!(emits.len(), 2, "{emits:?}");
    assert!(
        emits
            .iter()
            .all(|e| e.starts_with(r#"42["subscribe",{"game":"","user":"#)),
        "{emits:?}"
    );
    assert!(
        seen.pongs.load(std::sync::atomic::Ordering::Relaxed) >= 8,
        "pings answered"
    );
}

/// A scripted session: connect, wait for its answer, subscribe, wait for that, then
/// measure publications at their own pointers, answering the server's pings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_then_subscribe_session_waits_for_each_ack_and_answers_pings() {
    use livegames::client::template::Template;
    use livegames::load::session::frame::{FrameReader, FrameShape, TsSpec, TsUnit};
    use livegames::load::session::script::{Match, Reply, Step};
    let (addr, seen) = fake::start_connect_then_subscribe(Duration::from_millis(20)).await;
    let wait = |pointer: &str| Step::Wait {
        want: Match {
            pointer: pointer.into(),
            equals: None,
        },
        timeout: Duration::from_secs(5),
    };
    let send = |text: &str| Step::Send(Template::parse(text).unwrap());
    let shape = FrameShape {
        ts: TsSpec {
            pointer: "/push/pub/data/ts".into(),
            unit: TsUnit::Us,
        },
        seq: Some("/push/pub/data/seq".into()),
        reply_id: None,
    };
    let config = VuConfig {
        session: vec![
            send(r#"{"id":1,"connect":{"token":"u{user}"}}"#),
            wait("/connect/client"),
            send(r#"{"id":2,"subscribe":{"channel":"games:g1"}}"#),
            wait("/subscribe"),
        ],
        replies: vec![Reply {
            when: Match {
                pointer: "/type".into(),
                equals: Some(serde_json::json!("ping")),
            },
            send: Template::parse(r#"{"type":"pong"}"#).unwrap(),
        }],
        reader: FrameReader::new(&shape).unwrap(),
        ..vu()
    };
    let s = load_with(
        format!("ws://{addr}/connection/websocket"),
        2,
        Duration::from_secs(2),
        config.clone(),
    )
    .await;
    let c = &s.totals.counts;
    assert_eq!(
        seen.subscribed.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert!(c.frames > 100, "{c:?}");
    assert!(
        c.unreadable.is_empty(),
        "acks and pings are not measured: {c:?}"
    );
    assert_eq!((c.lost, c.duplicates), (Some(0), Some(0)), "{c:?}");
    assert!(
        s.checks.iter().all(|c| c.passed),
        "{:?} {:?}",
        s.checks,
        c.error_examples
    );
    assert!(
        seen.pongs.load(std::sync::atomic::Ordering::Relaxed) >= 8,
        "pings answered"
    );

    // A wait that never ends is a named error, not a hang.
    let stuck = VuConfig {
        session: vec![
            send(r#"{"id":1,"connect":{}}"#),
            Step::Wait {
                want: Match {
                    pointer: "/never".into(),
                    equals: None,
                },
                timeout: Duration::from_millis(300),
            },
        ],
        ..config
    };
    let s = load_with(
        format!("ws://{addr}/connection/websocket"),
        1,
        Duration::from_secs(1),
        stuck,
    )
    .await;
    assert_eq!(
        s.totals.counts.error_examples["session_timeout"],
        "waited 300ms for a frame with /never"
    );
}

/// npm's own socket.io 4 server (tests/peers; `npm ci --prefix tests/peers`, which
/// `.ci/run` does): its handshake, auth middleware, pings and events, as a user of
/// Artillery's socket.io engine would point load at it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_socket_io_server_is_measured_and_its_auth_refusal_named() {
    use livegames::client::template::Template;
    use livegames::load::session::link::Protocol;
    use livegames::load::session::socketio::{SocketIoOptions, engine_io_url};
    let Some(node) = crate::support::tools::tool("node", "nodejs") else {
        return;
    };
    let peers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    let installed = peers.join("node_modules/socket.io").is_dir();
    if !peer_installed("socket.io", installed, "npm ci --prefix tests/peers") {
        return;
    }
    let (mut server, mut lines, port) = spawn_peer(&node, &peers.join("socketio-server.js")).await;
    let url = engine_io_url(&url::Url::parse(&format!("ws://127.0.0.1:{port}")).unwrap());
    let options = |token: &str| SocketIoOptions {
        auth: Some(format!(r#"{{"token":"{token}"}}"#)),
        event: Some("tick".into()),
        emit: "subscribe".into(),
        ..SocketIoOptions::default()
    };
    let config = VuConfig {
        protocol: Protocol::Socketio,
        socketio: options("t1"),
        subscribe: Some(Template::parse(r#"{"user":{user}}"#).unwrap()),
        ..vu()
    };
    let s = load_with(url.to_string(), 3, Duration::from_secs(2), config.clone()).await;
    let c = &s.totals.counts;
    assert!(c.frames > 150, "{c:?}");
    assert!(c.unreadable.is_empty(), "{c:?}");
    assert_eq!((c.lost, c.duplicates), (Some(0), Some(0)), "{c:?}");
    assert!(s.latency.contains_key("delivery"), "{:?}", s.latency);
    assert!(
        s.checks.iter().all(|c| c.passed),
        "{:?} {:?}",
        s.checks,
        c.error_examples
    );
    let subscribes = tokio::time::timeout(Duration::from_secs(5), async {
        let mut seen = 0;
        while seen < 3 {
            let line = lines.next_line().await.unwrap().unwrap_or_default();
            if line.starts_with("subscribes ") {
                seen += 1;
            }
        }
        seen
    })
    .await
    .expect("the server got every subscribe event");
    assert_eq!(subscribes, 3);

    // The wrong token: the server's middleware refuses, and the error says so.
    let refused = VuConfig {
        socketio: options("wrong"),
        ..config
    };
    let s = load_with(url.to_string(), 1, Duration::from_millis(800), refused).await;
    let said = s
        .totals
        .counts
        .error_examples
        .values()
        .next()
        .cloned()
        .unwrap_or_default();
    assert!(
        said.contains("socket.io refused the namespace") && said.contains("not authorized"),
        "{:?}",
        s.totals.counts
    );
    let _ = server.kill().await;
}

/// PyPI's aiohttp serving Server-Sent Events (tests/peers/sse-server.py): events read
/// at the default pointers, and users that leave and come back resume with
/// Last-Event-ID, losing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_aiohttp_sse_endpoint_is_measured_and_resumed() {
    use livegames::load::session::link::Protocol;
    let Some(python) = crate::support::tools::tool("python3", "python3") else {
        return;
    };
    let has_aiohttp = std::process::Command::new(&python)
        .args(["-c", "import aiohttp"])
        .status()
        .is_ok_and(|s| s.success());
    if !peer_installed("aiohttp", has_aiohttp, "pip install aiohttp") {
        return;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/sse-server.py");
    let (mut server, mut lines, port) = spawn_peer(&python, &script).await;
    let config = VuConfig {
        protocol: Protocol::Sse,
        ws_ping: None,
        churn: Some(Duration::from_millis(700)),
        ..vu()
    };
    let s = load_with(
        format!("http://127.0.0.1:{port}/events"),
        3,
        Duration::from_secs(3),
        config,
    )
    .await;
    let c = &s.totals.counts;
    assert!(c.frames > 200, "{c:?}");
    assert!(c.unreadable.is_empty(), "{c:?}");
    assert!(c.reconnect_successes >= 6, "{c:?}");
    assert_eq!(
        (c.lost, c.duplicates, c.reordered),
        (Some(0), Some(0), Some(0)),
        "{c:?}"
    );
    assert!(
        s.checks.iter().all(|c| c.passed),
        "{:?} {:?}",
        s.checks,
        c.error_examples
    );
    let resumed = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .expect("a resume line")
        .unwrap()
        .unwrap_or_default();
    assert!(
        resumed.starts_with("resumed "),
        "the server saw Last-Event-ID: {resumed}"
    );
    let _ = server.kill().await;
}

/// MessagePack and CBOR feeds: decoded into the same pointers as JSON; the wrong
/// decoder names what it could not read; `bytes` counts arrivals alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_and_cbor_frames_are_decoded_and_read_at_the_same_pointers() {
    use livegames::load::session::frame::Decode;
    let every = Duration::from_millis(20);
    let msgpack = fake::start(Behaviour::Encoded {
        every,
        msgpack: true,
    })
    .await;
    let cbor = fake::start(Behaviour::Encoded {
        every,
        msgpack: false,
    })
    .await;
    let run = |addr: std::net::SocketAddr, decode: Decode| {
        load_with(
            format!("ws://{addr}/"),
            2,
            Duration::from_millis(1500),
            VuConfig { decode, ..vu() },
        )
    };
    for (addr, decode) in [(msgpack, Decode::Msgpack), (cbor, Decode::Cbor)] {
        let s = run(addr, decode).await;
        let c = &s.totals.counts;
        assert!(
            c.frames > 80 && c.binary_frames == c.frames,
            "{decode:?}: {c:?}"
        );
        assert!(c.unreadable.is_empty(), "{decode:?}: {c:?}");
        assert_eq!(
            (c.lost, c.duplicates),
            (Some(0), Some(0)),
            "{decode:?}: {c:?}"
        );
        assert!(s.latency["delivery"].count >= c.frames - 2, "{decode:?}");
        assert!(
            s.checks.iter().all(|c| c.passed),
            "{decode:?}: {:?}",
            s.checks
        );
    }
    // CBOR read as MessagePack: unreadable, and the verdict says which decoder failed.
    let s = run(cbor, Decode::Msgpack).await;
    let frames = check(&s, "frames");
    assert!(
        !frames.passed && frames.observed.contains("not MessagePack"),
        "{frames:?}"
    );
    // Without a decoder the bytes are unreadable binary frames.
    let s = run(msgpack, Decode::Json).await;
    assert!(
        s.totals.counts.unreadable.contains_key("binary"),
        "{:?}",
        s.totals.counts
    );
    // `bytes`: every arrival counts, nothing is read.
    let s = run(msgpack, Decode::Bytes).await;
    assert!(check(&s, "frames").passed, "{:?}", s.checks);
    assert_eq!(
        s.totals.counts.lost, None,
        "nothing read, so loss is unknown"
    );
    assert!(!s.latency.contains_key("delivery"));
}

/// STOMP over WebSocket, through the CLI with the shipped scenarios/stomp-example.toml
/// (its stage shortened): CONNECT, CONNECTED, SUBSCRIBE with a receipt, RECEIPT, then
/// MESSAGE bodies measured at /body/seq and /body/ts with nothing lost, heart-beats
/// passed over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stomp_session_subscribes_and_measures_message_bodies() {
    let (addr, seen) = fake::start_stomp(Duration::from_millis(20)).await;
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/stomp-example.toml"),
    )
    .unwrap();
    let short = shipped.replace(
        "conns = 20\nduration = \"5s\"",
        "conns = 3\nduration = \"2s\"",
    );
    assert_ne!(short, shipped, "the stage to shorten is in the scenario");
    let dir = std::env::temp_dir().join(format!("livegames-stomp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("stomp.toml");
    std::fs::write(&scenario, short).unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args([
            "load",
            &format!("ws://{addr}/ws"),
            "--quiet",
            "--json",
            "--scenario",
        ])
        .arg(&scenario)
        .arg("--report")
        .arg(dir.join("report"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ends")
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(
        seen.subscribed.load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    let counts = &report["totals"];
    assert!(counts["frames"].as_u64().unwrap() > 100, "{counts}");
    assert_eq!(counts["lost"], 0, "{counts}");
    assert_eq!(counts["unreadable"], serde_json::json!({}), "{counts}");
    assert!(report["latency"]["delivery"]["count"].as_u64().unwrap() > 100);

    let _ = std::fs::remove_dir_all(&dir);
}

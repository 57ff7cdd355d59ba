//! smoke against our server (passes), an independent server that keeps the contract
//! (passes), and that server broken in one way at a time (fails, naming the check).

use std::time::Duration;

use livegames::client::Target;
use livegames::contract::schema::Schemas;
use livegames::smoke::{CheckId, Selection, SmokeConfig, SmokeReport, Status};

use crate::support::contract_server::{self, Breakage, HEARTBEAT};
use crate::support::*;

fn config(base: String, heartbeat: Duration) -> SmokeConfig {
    SmokeConfig {
        timeout: Duration::from_secs(15),
        heartbeat,
        ..SmokeConfig::new(Target::parse(&base).expect("a server URL"))
    }
}

fn listing(report: &SmokeReport) -> String {
    livegames::smoke::render::text(report, livegames::smoke::render::Palette::new(false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_server_passes_every_check_including_admin_faults() {
    let mut serve_config = fast_config();
    serve_config.admin_token = Some("smoke-token".into());
    // With a real InfluxDB where there is one (CI has it): health.store then passes.
    let influx = crate::support::influxdb::InfluxDb::start().await;
    if let Some(influx) = &influx {
        serve_config.influxdb =
            Some(livegames::influx::parse(&influx.url("smoke"), |_| None).unwrap());
        serve_config.influx.flush_every = Duration::from_millis(100);
    }
    let server = start(serve_config).await;
    live_game(&server).await;
    let mut config = config(server.http_url(), Duration::from_secs(1));
    config.checks = Selection::parse("all").unwrap();
    config.admin_token = Some("smoke-token".into());
    let report = livegames::smoke::run(&config, Schemas::builtin(true)).await;
    let text = listing(&report);
    assert!(report.passed, "{text}");
    let skipped = if influx.is_some() { 0 } else { 1 };
    assert_eq!(report.counts.skipped, skipped, "{text}");
    assert_eq!(report.checks.len(), CheckId::ALL.len(), "{text}");
    if influx.is_some() {
        let store = &report.check("health.store").unwrap().detail;
        assert!(store.starts_with("influxdb ok"), "{text}");
    }
    // Issue 12: the outage is timed from the injection (a status frame from before it
    // once passed for its effect: "stale after 0.0 s"), and the status frame says how
    // old ESPN's data was. This server calls a source stale after 0.4 s.
    let faults = &report.check("admin.faults").unwrap().detail;
    let after = faults
        .split_once(" after ")
        .and_then(|(_, rest)| rest.split_once(" s")?.0.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("admin.faults says when: {faults}"));
    assert!(after >= 0.3, "{faults}");
    assert!(
        faults.contains("(its data ") && faults.contains(" old)"),
        "{faults}"
    );
    server.stop().await.unwrap();
}

/// issue 13: after a deploy, smoke says which upstream is not reachable and that the
/// store is not writing, with what the server says of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_its_scores_key_or_its_store_fails_exactly_those_checks() {
    let closed = closed_addr();
    let mut serve_config = fast_config();
    serve_config.influxdb =
        Some(livegames::influx::parse(&format!("http://{closed}/db"), |_| None).unwrap());
    // API-SPORTS somewhere real (here: nowhere) and no key for it.
    serve_config.apisports_url = Some(format!("http://{closed}/{{sport}}"));
    let server = start(serve_config).await;
    live_game(&server).await;
    let mut config = config(server.http_url(), Duration::from_secs(1));
    config.checks = Selection::parse("health,health.upstreams,health.store").unwrap();
    config.timeout = Duration::from_secs(5);
    let report = livegames::smoke::run(&config, Schemas::builtin(true)).await;
    let text = listing(&report);
    assert!(!report.passed, "{text}");
    assert_eq!(
        report.failed(),
        ["health.upstreams", "health.store"],
        "{text}"
    );
    let upstreams = report.check("health.upstreams").unwrap();
    assert_eq!(
        upstreams.violations[0].pointer, "/sources/apisports/state",
        "{text}"
    );
    assert!(
        upstreams.violations[0].actual.contains("no API key"),
        "{text}"
    );
    let store = report.check("health.store").unwrap();
    assert_eq!(
        store.violations[0].pointer, "/store/influxdb/state",
        "{text}"
    );
    assert!(
        store.violations[0].actual.contains("could not connect"),
        "{text}"
    );
    assert!(
        !text.contains(&closed.port().to_string()),
        "no upstream address in the report: {text}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_server_that_keeps_the_contract_passes() {
    let addr = contract_server::start(Breakage::None).await;
    let report = livegames::smoke::run(
        &config(format!("http://{addr}"), HEARTBEAT),
        Schemas::builtin(false),
    )
    .await;
    let text = listing(&report);
    assert!(report.passed, "{text}");
    // It reports no store: that check is skipped, saying so.
    assert_eq!(report.counts.skipped, 1, "{text}");
    assert_eq!(report.check("health.store").unwrap().status, Status::Skip);
    let heartbeat = report.check("ws.heartbeat").unwrap();
    assert!(heartbeat.detail.contains("a heartbeat after"), "{text}");
    let epoch = report.check("ws.epoch").unwrap();
    assert!(epoch.detail.contains("got epoch_changed"), "{text}");
}

/// A contract 1.0.0 server has no epochs: ws.epoch says so and skips; all else passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_0_0_server_passes_with_the_epoch_check_skipped() {
    let addr = contract_server::start(Breakage::Version100).await;
    let report = livegames::smoke::run(
        &config(format!("http://{addr}"), HEARTBEAT),
        Schemas::builtin(false),
    )
    .await;
    let text = listing(&report);
    assert!(report.passed, "{text}");
    assert_eq!(
        report.counts.skipped, 2,
        "{text}: ws.epoch and health.store"
    );
    let epoch = report.check("ws.epoch").unwrap();
    assert_eq!(epoch.status, Status::Skip, "{text}");
    assert!(
        epoch.detail.contains("contract 1.0.0, without epochs"),
        "{text}"
    );
}

/// Each breakage, the checks that must fail (and no others), and what the first
/// violation of the named check must point at.
const BREAKAGES: &[(Breakage, &[&str], &str)] = &[
    (Breakage::SeqBackwards, &["ws.seq"], "/seq"),
    (Breakage::NoType, &["ws.schema"], "/type"),
    (
        Breakage::TsMillis,
        // ms values are also below the schema's minimum, in every frame type.
        &[
            "ws.ts",
            "ws.schema",
            "ws.ping",
            "ws.unknown_game",
            "sse.stream",
        ],
        "/ts",
    ),
    (Breakage::NonJson, &["ws.json"], ""),
    (Breakage::Unhealthy, &["health"], ""),
    (Breakage::NoSnapshot, &["ws.snapshot_first"], "/type"),
    (Breakage::UnknownGameNotClosed, &["ws.unknown_game"], ""),
    (Breakage::NoHeartbeat, &["ws.heartbeat"], ""),
    (Breakage::NoPong, &["ws.ping"], ""),
    // It ignores since, so also the epoch a since belongs to.
    (Breakage::ResumeIgnored, &["ws.resume", "ws.epoch"], "/seq"),
    (Breakage::EpochIgnored, &["ws.epoch"], "/seq"),
    // Resuming in the epoch the snapshot named is then refused as well.
    (
        Breakage::EpochMismatch,
        &["ws.epoch", "ws.resume"],
        "/epoch",
    ),
    (
        Breakage::TimelineShape,
        &["timeline.matches_stream"],
        "/points/0/data",
    ),
    (Breakage::CatchAll200, &["http.unknown_path"], ""),
    (Breakage::AdvertisesElsewhere, &["games.advertised"], ""),
    (Breakage::SseIdNotSeq, &["sse.stream"], ""),
    (Breakage::ResumeAltered, &["ws.resume"], "/data/score/home"),
    (Breakage::ResumeRefused, &["ws.resume"], "/code"),
    (
        Breakage::TimelineAltered,
        &["timeline.matches_stream"],
        "/data/score/home",
    ),
    (Breakage::TimelineGaps, &["timeline.matches_stream"], "/seq"),
    (Breakage::BinaryFrame, &["ws.json"], ""),
    (Breakage::OtherGameFrame, &["ws.schema"], "/game_id"),
    (Breakage::UnknownGame404, &["ws.unknown_game"], ""),
    (
        Breakage::UnknownGameWrongCode,
        &["ws.unknown_game"],
        "/code",
    ),
    (Breakage::TimelineDisordered, &["timeline"], "/points/1/seq"),
    (Breakage::TimelineLastSeqBehind, &["timeline"], "/last_seq"),
    (Breakage::TimelineOtherGame, &["timeline"], "/game_id"),
    (Breakage::ScoresWrongLeague, &["scores.nhl"], "/league"),
    (Breakage::ScoresTeapot, &["scores.nfl"], ""),
    (Breakage::EpochWrongCode, &["ws.epoch"], "/code"),
    (Breakage::EpochStaleSnapshot, &["ws.epoch"], "/epoch"),
    (Breakage::EpochNoSnapshot, &["ws.epoch"], ""),
    (Breakage::SnapshotWithoutEpoch, &["ws.epoch"], "/epoch"),
    (Breakage::ResumeNoSnapshot, &["ws.resume"], ""),
    (Breakage::SseTextPlain, &["sse.stream"], ""),
    (Breakage::SseUpdateFirst, &["sse.stream"], ""),
    (Breakage::SseSeqGap, &["sse.stream"], ""),
    (Breakage::SseReplayAltered, &["sse.stream"], ""),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_breakage_fails_the_right_check_and_only_that() {
    let mut config = config("http://127.0.0.1:1".into(), HEARTBEAT);
    // Failing checks wait for their timeout: keep it short, but not flaky.
    config.timeout = Duration::from_secs(4);
    for (breakage, expected, pointer) in BREAKAGES {
        let addr = contract_server::start(*breakage).await;
        config.target = Target::parse(&format!("http://{addr}")).unwrap();
        let report = livegames::smoke::run(&config, Schemas::builtin(false)).await;
        let text = listing(&report);
        let mut failed = report.failed();
        failed.sort();
        let mut wanted = expected.to_vec();
        wanted.sort();
        assert_eq!(failed, wanted, "{breakage:?}:\n{text}");
        let named = report.check(expected[0]).unwrap();
        assert_eq!(named.status, Status::Fail);
        if !pointer.is_empty() {
            assert!(
                named
                    .violations
                    .iter()
                    .any(|v| v.pointer.starts_with(pointer)),
                "{breakage:?}: no violation at {pointer}:\n{text}"
            );
        }
        assert!(text.contains(&format!("FAIL {}", expected[0])), "{text}");
    }
}

/// `admin.faults` against the independent server: it passes where the outage shows on
/// the stream and in `/health`, and fails, saying what it saw, where either does not
/// or the admin API refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_faults_fails_for_each_way_an_outage_can_go_unseen() {
    let mut config = config("http://127.0.0.1:1".into(), HEARTBEAT);
    config.timeout = Duration::from_secs(4);
    config.checks = Selection::parse("admin.faults").unwrap();
    let cases: &[(Breakage, &[&str])] = &[
        (Breakage::None, &[]),
        (Breakage::AdminRefused, &["POST /admin/faults", "401"]),
        (
            Breakage::AdminNoEffect,
            &[
                "a status frame with espn stale or down",
                "no such frame in time",
            ],
        ),
        (
            Breakage::AdminHealthStays,
            &["/health: degraded, espn not ok", "\"healthy\", espn ok"],
        ),
    ];
    for (breakage, said) in cases {
        let addr = contract_server::start(*breakage).await;
        config.target = Target::parse(&format!("http://{addr}")).unwrap();
        config.admin_token = None;
        let report = livegames::smoke::run(&config, Schemas::builtin(false)).await;
        let check = report.check("admin.faults").unwrap();
        assert_eq!(check.status, Status::Skip, "{}", listing(&report));
        assert!(check.detail.contains("--admin-token"), "{}", check.detail);
        config.admin_token = Some("smoke-token".into());
        let report = livegames::smoke::run(&config, Schemas::builtin(false)).await;
        let text = listing(&report);
        let check = report.check("admin.faults").unwrap();
        if said.is_empty() {
            assert_eq!(check.status, Status::Pass, "{breakage:?}:\n{text}");
            assert!(check.detail.starts_with("espn down after "), "{text}");
            assert!(check.detail.contains("(its data 2."), "{text}");
            continue;
        }
        assert_eq!(check.status, Status::Fail, "{breakage:?}:\n{text}");
        for words in *said {
            assert!(
                text.contains(words),
                "{breakage:?}: no {words:?} in\n{text}"
            );
        }
    }
}

/// issue 10: the checks' counts agree: frames that are not JSON are not counted as
/// valid by ws.schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frame_checks_agree_on_what_they_counted() {
    let addr = contract_server::start(Breakage::NonJson).await;
    let mut config = config(format!("http://{addr}"), HEARTBEAT);
    config.timeout = Duration::from_secs(4);
    let report = livegames::smoke::run(&config, Schemas::builtin(false)).await;
    let text = listing(&report);
    let json = report.check("ws.json").unwrap();
    let schema = report.check("ws.schema").unwrap();
    assert_eq!(json.status, Status::Fail, "{text}");
    assert_eq!(schema.status, Status::Pass, "{text}");
    let frames = config.messages + 1;
    let objects = frames - json.violation_count;
    assert!(
        schema
            .detail
            .starts_with(&format!("{objects} of {frames} frames are JSON objects")),
        "{text}"
    );
}

/// A TCP relay on its own port in front of `backend` (a proxy that passes the Host
/// header through and says nothing else): the server sees the relay's connection.
async fn relay(backend: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    addr
}

/// Behind a proxy, a server that advertises its own (backend) address sends clients
/// around the proxy: smoke fails that check, names both addresses and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertised_urls_that_point_past_the_proxy_fail_with_the_fix() {
    let server = start(fast_config()).await;
    live_game(&server).await;
    let front = relay(server.local_addr).await;
    let mut proxied = config(format!("http://{front}"), Duration::from_secs(1));
    proxied.checks = Selection::parse("games,games.advertised").unwrap();
    let report = livegames::smoke::run(&proxied, Schemas::builtin(false)).await;
    let text = listing(&report);
    assert!(!report.passed, "{text}");
    let check = report.check("games.advertised").unwrap();
    assert_eq!(check.status, Status::Fail, "{text}");
    let backend = server.local_addr;
    assert!(
        check
            .detail
            .contains(&format!("points at {backend}, not {front}"))
            && check.detail.contains("--trust-proxy")
            && check.detail.contains("--public-url"),
        "{text}"
    );

    // Told it is expected: passes, and says so.
    proxied.advertised_elsewhere_ok = true;
    let report = livegames::smoke::run(&proxied, Schemas::builtin(false)).await;
    let check = report.check("games.advertised").unwrap();
    assert_eq!(check.status, Status::Pass, "{}", listing(&report));
    assert!(
        check
            .detail
            .ends_with("expected (--advertised-elsewhere-ok)")
    );

    // Reached directly: every advertised URL points where smoke went.
    let mut direct = config(server.http_url(), Duration::from_secs(1));
    direct.checks = Selection::parse("games,games.advertised").unwrap();
    let report = livegames::smoke::run(&direct, Schemas::builtin(false)).await;
    assert!(report.passed, "{}", listing(&report));
    server.stop().await.unwrap();
}

/// `sse.stream` is checked where the server offers the stream, and skipped, saying
/// so, where it answers 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sse_stream_is_checked_or_skipped_when_not_offered() {
    let addr = contract_server::start(Breakage::None).await;
    let mut config = config(format!("http://{addr}"), HEARTBEAT);
    config.checks = Selection::parse("games,sse.stream").unwrap();
    let report = livegames::smoke::run(&config, Schemas::builtin(false)).await;
    let sse = report.check("sse.stream").unwrap();
    assert_eq!(sse.status, Status::Pass, "{}", listing(&report));
    assert!(sse.detail.contains("replayed seq"), "{}", sse.detail);

    // This server streams only its live game as events: the quiet one answers 404.
    config.game = Some(contract_server::QUIET.into());
    let report = livegames::smoke::run(&config, Schemas::builtin(false)).await;
    let sse = report.check("sse.stream").unwrap();
    assert_eq!(sse.status, Status::Skip, "{}", listing(&report));
    assert!(
        sse.detail
            .ends_with("404, the server offers no Server-Sent Events stream"),
        "{}",
        sse.detail
    );
}

/// `smoke --compress`: the contract checks run over sockets that agreed
/// permessage-deflate (every one of them compressed, the server counts), and pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checks_pass_over_compressed_sockets() {
    let server = start(fast_config()).await;
    live_game(&server).await;
    let mut config = config(server.http_url(), Duration::from_secs(1));
    config.connect.compress = livegames::wire::Offer::On;
    let report = livegames::smoke::run(&config, Schemas::builtin(true)).await;
    assert!(report.passed, "{}", listing(&report));
    let compressed = metric(&server, "livegames_ws_deflate_connections_total").await;
    let opened = metric(&server, "livegames_ws_connections_opened_total").await;
    // Every stream opened compressed (the unknown-game probe is refused, not opened).
    assert!(
        opened > 0.0 && compressed >= opened,
        "{compressed} of {opened}"
    );
    server.stop().await.unwrap();
}

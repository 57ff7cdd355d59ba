//! A green run means that what it claims was measured was measured: every frame is
//! counted by what it is, and a run whose frames could not be read fails, saying what
//! arrived instead.

use std::time::Duration;

use livegames::client::ConnectOptions;
use livegames::load::LoadConfig;
use livegames::load::plan::shard::Share;
use livegames::load::results::summary::{LoadSummary, RunCheck};
use livegames::load::session::VuConfig;
use tokio_util::sync::CancellationToken;

use crate::support::fake::{self, Behaviour};

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

async fn load_with(url: String, conns: usize, run_for: Duration, vu: VuConfig) -> LoadSummary {
    let config = LoadConfig {
        targets: vec![url::Url::parse(&url).unwrap().into()],
        share: Share::whole(conns),
        clock_probe: None,
        duration: run_for,
        ramp: Duration::ZERO,
        vu,
        budgets: Vec::new(),
        out: None,
    };
    livegames::load::run(config, CancellationToken::new(), |_| {}).await
}

fn check<'a>(summary: &'a LoadSummary, name: &str) -> &'a RunCheck {
    summary
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {:?}", summary.checks))
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

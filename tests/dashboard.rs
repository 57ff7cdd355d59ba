//! The dashboard, in headless Chromium against serve on a loopback port.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::support::browser::Browser;
use crate::support::*;

#[tokio::test]
async fn the_page_and_its_assets_are_built_in_and_share_the_report_look() {
    let server = start(fast_config()).await;
    let page = get(&format!("{}/", server.http_url())).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/assets/dashboard.js") && html.contains("/assets/livegames.css"));
    let css = get(&format!("{}/assets/livegames.css", server.http_url()))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        css,
        livegames::load::report::STYLE,
        "one stylesheet for both"
    );
    let script = get(&format!("{}/assets/dashboard.js", server.http_url())).await;
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let text = script.text().await.unwrap();
    assert!(
        !text.contains("http://") && !text.contains("https://"),
        "no outside URLs"
    );
    server.stop().await.unwrap();
}

const POINTS: &str = "Number(document.querySelector('#chart')?.dataset.points || 0)";
const LAST_SEQ: &str = "Number(document.querySelector('#chart')?.dataset.lastSeq || 0)";
const STATE: &str = "document.querySelector('#conn')?.dataset.state";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_shows_games_and_a_game_page_grows_then_closes_its_socket() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let server = start(fast_config()).await;
    let id = live_game(&server).await;
    browser.goto(&format!("{}/#/live", server.http_url())).await;
    browser
        .wait_for(
            "live rows",
            "document.querySelectorAll('#games tr.live a.game-link').length",
        )
        .await;
    let rows = browser
        .eval("document.querySelectorAll('#games tbody tr').length")
        .await;
    let games = get(&format!("{}/api/live/games", server.http_url()))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        rows,
        games["games"].as_array().unwrap().len(),
        "one row per game"
    );
    let cells = browser
        .eval(&format!(
            "document.querySelector('tr[data-game=\"{id}\"]').innerText"
        ))
        .await;
    let cells = cells.as_str().unwrap();
    assert!(
        cells.contains(" @ ") && cells.contains("live") && cells.contains('%'),
        "{cells}"
    );
    // issue 12: a fan's clock ("Q2 5:32", "End of Q2", "OT 1:05"), not ESPN's
    // "P2 0.0"; a final game says "Final" and who won, not a dash.
    let live_clock = browser
        .eval(&format!(
            "document.querySelector('tr[data-game=\"{id}\"] td:nth-child(3)').innerText"
        ))
        .await;
    let live_clock = live_clock.as_str().unwrap();
    let fan_clock = |c: &str| {
        let (period, rest) = c.split_once(' ').unwrap_or((c, ""));
        let period_ok = ["Q1", "Q2", "Q3", "Q4", "OT"].contains(&period)
            || period
                .strip_suffix("OT")
                .is_some_and(|n| n.parse::<u32>().is_ok());
        c.starts_with("End of ") || (period_ok && !rest.is_empty())
    };
    assert!(fan_clock(live_clock), "{live_clock:?}");
    let final_row = browser
        .eval("[...document.querySelectorAll('#games tr.final')].map(r => [r.children[2].innerText, r.querySelector('td.home-win').innerText])")
        .await;
    let final_rows = final_row.as_array().expect("a list");
    let finals_listed = games["games"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["latest"]["state"] == "final")
        .count();
    // The staggered replay nearly always has a final game; when the API listed one,
    // the page shows it.
    assert!(
        finals_listed == 0 || !final_rows.is_empty(),
        "{finals_listed} final games listed, none shown"
    );
    for r in final_rows {
        assert_eq!(r[0], "Final", "{r}");
        let won = r[1].as_str().unwrap();
        assert!(
            won.ends_with(" won") || won.ends_with(" lost") || won == "tied",
            "{r}"
        );
    }
    browser.screenshot("live-list").await;

    browser
        .eval(&format!(
            "document.querySelector('tr[data-game=\"{id}\"] a.game-link').click()"
        ))
        .await;
    browser
        .wait_for("the chart from the timeline", &format!("{POINTS} > 0"))
        .await;
    browser
        .wait_for("the stream to connect", &format!("{STATE} === 'live'"))
        .await;
    let first = browser.eval(POINTS).await.as_u64().unwrap();
    browser
        .wait_for(
            "the chart to grow from the stream",
            &format!("{POINTS} >= {}", first + 40),
        )
        .await;
    let scoreline = browser
        .eval("document.querySelector('#scoreline').innerText")
        .await;
    assert!(scoreline.as_str().unwrap().contains('–'), "{scoreline}");
    // Full redraws happen only when the x range doubles: a handful, not one per frame.
    let points = browser.eval(POINTS).await.as_f64().unwrap();
    let redraws = browser
        .eval("Number(document.querySelector('#chart').dataset.redraws)")
        .await;
    let allowed = 2.0 + (points / 64.0).log2().max(0.0).ceil();
    assert!(
        redraws.as_f64().unwrap() <= allowed,
        "incremental drawing: {redraws} full redraws for {points} points"
    );
    assert_eq!(metric(&server, "livegames_ws_connections ").await, 1.0);
    browser.screenshot("live-game").await;

    browser.eval("location.hash = '#/live'").await;
    wait_for("the game's socket to close when leaving", || async {
        (metric(&server, "livegames_ws_connections ").await == 0.0).then_some(())
    })
    .await;
    // issue 11: the browser saw the closing handshake complete (not 1006).
    let closed = wait_for_value(&mut browser, "window.__livegamesLastClose || null").await;
    assert_eq!(closed["code"], 1000, "{closed}");
    assert_eq!(closed["wasClean"], true, "{closed}");
    server.stop().await.unwrap();
}

/// Evaluates `expression` in the page until it is not null (or the deadline passes).
async fn wait_for_value(browser: &mut Browser, expression: &str) -> Value {
    let started = Instant::now();
    loop {
        let value = browser.eval(expression).await;
        if !value.is_null() {
            return value;
        }
        assert!(started.elapsed() < DEADLINE, "{expression} stayed null");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_game_says_so_and_links_back() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let server = start(fast_config()).await;
    browser
        .goto(&format!("{}/#/live/no-such-game", server.http_url()))
        .await;
    let text = browser
        .wait_for(
            "the message",
            "document.querySelector('#unknown')?.innerText",
        )
        .await;
    assert!(
        text.as_str().unwrap().contains("No game “no-such-game”"),
        "{text}"
    );
    browser
        .eval("document.querySelector('#back').click()")
        .await;
    browser
        .wait_for(
            "the list after the link",
            "document.querySelectorAll('#games tbody tr').length",
        )
        .await;
    server.stop().await.unwrap();
}

/// A TCP proxy that can cut every connection and refuse new ones, then come back on
/// the same port: to the page, the server went away and returned with its history.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            upstream,
            tasks: JoinSet::new(),
        };
        proxy.accept(listener);
        proxy
    }

    fn accept(&mut self, listener: TcpListener) {
        let upstream = self.upstream;
        self.tasks.spawn(async move {
            let mut pipes = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                pipes.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
    }

    /// Drops the listener and every open connection (aborting the task owns both).
    async fn cut(&mut self) {
        self.tasks.shutdown().await;
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.accept(listener);
    }
}

/// Seqs of the timeline's points from `from` on.
async fn timeline_seqs(server: &livegames::serve::ServerHandle, id: &str, from: u64) -> Vec<u64> {
    let url = format!(
        "{}/api/games/{id}/timeline?since={}",
        server.http_url(),
        from.saturating_sub(1)
    );
    let timeline: Value = get(&url).await.json().await.unwrap();
    timeline["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_drop_the_page_reconnects_and_fills_the_gap() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let server = start(fast_config()).await;
    let id = live_game(&server).await;
    let mut proxy = Proxy::start(server.local_addr).await;
    browser
        .goto(&format!("http://{}/#/live/{id}", proxy.addr))
        .await;
    browser
        .wait_for("the stream", &format!("{STATE} === 'live' && {POINTS} > 5"))
        .await;
    proxy.cut().await;
    browser
        .wait_for("the page to notice", &format!("{STATE} === 'reconnecting'"))
        .await;
    let seen_before = browser.eval(LAST_SEQ).await.as_u64().unwrap();
    // Let the server move on while the page is cut off.
    wait_for("frames the page missed", || async {
        let seqs = timeline_seqs(&server, &id, seen_before + 1).await;
        (seqs.len() >= 10).then_some(())
    })
    .await;
    proxy.restore().await;
    let missed_to = *timeline_seqs(&server, &id, seen_before + 1)
        .await
        .last()
        .unwrap();
    browser
        .wait_for(
            "the page to catch up",
            &format!("{STATE} === 'live' && {LAST_SEQ} >= {missed_to}"),
        )
        .await;
    let page: Vec<u64> =
        serde_json::from_value(browser.eval("window.__livegames.seqs()").await).unwrap();
    let first = page[0];
    let last = *page.last().unwrap();
    let expected: Vec<u64> = timeline_seqs(&server, &id, first)
        .await
        .into_iter()
        .filter(|s| *s <= last)
        .collect();
    assert_eq!(
        page, expected,
        "the chart has every point, none twice, across the drop"
    );
    assert_eq!(
        browser
            .eval("Number(document.querySelector('#chart').dataset.holes)")
            .await,
        0
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_the_page_reloads_from_the_new_server() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let first = start(fast_config()).await;
    let id = live_game(&first).await;
    let addr = first.local_addr;
    browser
        .goto(&format!("{}/#/live/{id}", first.http_url()))
        .await;
    browser
        .wait_for("the stream", &format!("{STATE} === 'live' && {POINTS} > 5"))
        .await;
    first.stop().await.unwrap();
    browser
        .wait_for("the page to notice", &format!("{STATE} === 'reconnecting'"))
        .await;
    // The scenario: away for a second, then a new run five times faster, already past
    // the page's seq when it returns: only the epoch (contract 1.1.0) tells the page
    // that these seqs are not the ones it had.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut second_config = fast_config();
    second_config.rate = 100.0;
    let second = livegames::serve::spawn(second_config, &addr.to_string())
        .await
        .expect("same port");
    browser
        .wait_for("live again", &format!("{STATE} === 'live'"))
        .await;
    // The new server's seqs started again: the page must show its timeline, not a mix.
    let started = Instant::now();
    loop {
        let page: Vec<u64> =
            serde_json::from_value(browser.eval("window.__livegames.seqs()").await).unwrap();
        if let (Some(&first_seq), Some(&last)) = (page.first(), page.last()) {
            let expected: Vec<u64> = timeline_seqs(&second, &id, first_seq)
                .await
                .into_iter()
                .filter(|s| *s <= last)
                .collect();
            if page == expected && page.len() > 3 {
                break;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "page {page:?} vs the new server's {expected:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_at_50_frames_per_second() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let mut config = fast_config();
    // Market ticks on top of plays: about 50 frames/s on this game in a debug build.
    config.rate = 70.0;
    let server = start(config).await;
    let id = live_game(&server).await;
    // A small cap, so the run thins the series several times.
    browser
        .goto(&format!("{}/?cap=1000#/live/{id}", server.http_url()))
        .await;
    browser
        .wait_for("the stream", &format!("{STATE} === 'live' && {POINTS} > 0"))
        .await;
    let run = Duration::from_secs(150);
    let started = Instant::now();
    let start_seq = browser.eval(LAST_SEQ).await.as_u64().unwrap();
    let mut samples = Vec::new();
    let mut slowest_answer = Duration::ZERO;
    while started.elapsed() < run {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let asked = Instant::now();
        browser.eval("performance.now()").await;
        slowest_answer = slowest_answer.max(asked.elapsed());
        let points = browser.eval(POINTS).await.as_u64().unwrap();
        assert!(points <= 1000, "the cap holds: {points}");
        samples.push(browser.heap_after_gc().await);
    }
    let frames = browser.eval(LAST_SEQ).await.as_u64().unwrap() - start_seq;
    let server_frames = game_seq(&server, &id).await - start_seq;
    let per_second = frames as f64 / run.as_secs_f64();
    // The stream runs at 50 frames/s (fewer when this machine is busy): the page must
    // keep up with whatever the server sent, within its 200 ms batching.
    assert!(
        server_frames as f64 / run.as_secs_f64() >= 30.0,
        "the stream was busy enough to mean something: {server_frames} frames"
    );
    assert!(
        frames as f64 >= 0.97 * server_frames as f64,
        "the page kept up: {frames} of {server_frames} frames"
    );
    assert!(
        slowest_answer < Duration::from_secs(2),
        "the page never froze: {slowest_answer:?}"
    );
    // After warm-up (the first samples), the heap must not keep growing.
    let settled = samples[2];
    let peak = samples[2..].iter().cloned().fold(0.0, f64::max);
    assert!(
        peak - settled < 2.0 * 1024.0 * 1024.0,
        "heap after GC grew from {settled} to {peak} bytes: {samples:?}"
    );
    eprintln!(
        "dashboard at {per_second:.1} frames/s for {run:?}: heap after GC {:.2}..{:.2} MiB, slowest answer {slowest_answer:?}",
        samples.iter().cloned().fold(f64::MAX, f64::min) / 1048576.0,
        peak / 1048576.0
    );
    server.stop().await.unwrap();
}

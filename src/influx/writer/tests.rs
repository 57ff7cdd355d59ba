//! The writer against a stand-in InfluxDB 1.x: batching, retries, refusals, the
//! bounded queue and the drain at shutdown.

use std::sync::atomic::{AtomicU16, Ordering};

use crate::influx::Tally;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;

use super::*;

/// A stand-in InfluxDB 1.x: records what it is sent, answers with `status`.
#[derive(Default)]
struct Fake {
    writes: Mutex<Vec<String>>,
    queries: Mutex<Vec<String>>,
    status: AtomicU16,
}

async fn fake() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    fake.status.store(204, Ordering::SeqCst);
    let app = axum::Router::new()
        .route(
            "/write",
            post(|State(f): State<Arc<Fake>>, body: String| async move {
                let status = f.status.load(Ordering::SeqCst);
                if status == 204 {
                    lock(&f.writes).push(body);
                }
                (
                    StatusCode::from_u16(status).unwrap(),
                    "{\"error\":\"nope\"}",
                )
            }),
        )
        .route(
            "/query",
            post(|State(f): State<Arc<Fake>>, body: String| async move {
                lock(&f.queries).push(body);
                "{}"
            }),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, format!("http://{addr}/games"))
}

fn config() -> WriterConfig {
    WriterConfig {
        batch_lines: 5,
        flush_every: Duration::from_millis(50),
        queue_lines: 1_000,
        timeout: Duration::from_secs(2),
        backoff: Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(100),
        },
        drain_for: Duration::from_secs(2),
        retention: Retention::Leave,
    }
}

async fn start(
    url: &str,
    config: WriterConfig,
) -> (
    Writer,
    Arc<Tally>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let counts = Arc::new(Tally::default());
    let stop = CancellationToken::new();
    let target = super::super::parse(url, |_| None).unwrap();
    let (writer, task) = Writer::new(target, config, reqwest::Client::new(), counts.clone());
    let task = tokio::spawn(task.run(stop.clone()));
    (writer, counts, stop, task)
}

async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn lines(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("m x={i}i {i}\n")).collect()
}

#[tokio::test]
async fn creates_the_database_then_sends_full_batches_and_flushes_the_rest() {
    let (fake, url) = fake().await;
    let (writer, counts, stop, task) = start(&url, config()).await;
    for l in lines(0..12) {
        writer.push(l);
    }
    until("12 lines written", || counts.counts().0 == 12).await;
    assert_eq!(
        lock(&fake.queries).as_slice(),
        ["q=CREATE+DATABASE+%22games%22"]
    );
    let writes = lock(&fake.writes).clone();
    let sizes: Vec<usize> = writes.iter().map(|w| w.lines().count()).collect();
    assert!(
        sizes.iter().all(|n| *n <= 5),
        "batches of at most 5: {sizes:?}"
    );
    assert_eq!(
        writes.concat(),
        lines(0..12).concat(),
        "in order, each once"
    );
    assert_eq!(writer.status().state, StoreState::Ok);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_failing_server_is_retried_and_nothing_is_lost_or_doubled() {
    let (fake, url) = fake().await;
    fake.status.store(503, Ordering::SeqCst);
    let (writer, counts, stop, task) = start(&url, config()).await;
    for l in lines(0..3) {
        writer.push(l);
    }
    until("failures", || counts.counts().1 >= 2).await;
    assert!(
        matches!(writer.status().state, StoreState::Failing(ref why) if why.contains("HTTP 503"))
    );
    fake.status.store(204, Ordering::SeqCst);
    until("written after recovery", || counts.counts().0 == 3).await;
    assert_eq!(lock(&fake.writes).concat(), lines(0..3).concat());
    assert_eq!(counts.counts().2, 0);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn refused_lines_are_dropped_not_retried() {
    let (fake, url) = fake().await;
    fake.status.store(400, Ordering::SeqCst);
    let (writer, counts, stop, task) = start(&url, config()).await;
    writer.push("m x=\"unterminated 1\n".into());
    until("dropped", || counts.counts().2 == 1).await;
    assert_eq!(counts.counts().1, 1, "once, not retried");
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_pushing_never_waits() {
    // Nothing listens here: every request fails to connect.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = config();
    c.queue_lines = 100;
    let (writer, counts, stop, task) = start(&format!("http://{closed}/games"), c).await;
    for l in lines(0..10_000) {
        writer.push(l);
    }
    assert!(writer.status().queued <= 100);
    assert!(counts.counts().2 >= 9_900 - 5);
    stop.cancel();
    task.await.unwrap();
    // Shutdown could send nothing: everything left is counted as dropped.
    assert_eq!(counts.counts().2, 10_000);
    assert_eq!(counts.counts().0, 0);
}

#[tokio::test]
async fn shutdown_sends_what_is_queued() {
    let (fake, url) = fake().await;
    let mut c = config();
    c.flush_every = Duration::from_secs(3600);
    c.batch_lines = 1_000;
    let (writer, counts, stop, task) = start(&url, c).await;
    until("database created", || !lock(&fake.queries).is_empty()).await;
    for l in lines(0..7) {
        writer.push(l);
    }
    stop.cancel();
    task.await.unwrap();
    assert_eq!(counts.counts().0, 7);
    assert_eq!(lock(&fake.writes).concat(), lines(0..7).concat());
}

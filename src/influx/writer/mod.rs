//! A batched, bounded writer that never makes its caller wait.
//!
//! [`Writer::push`] appends lines to a bounded queue and returns at once; when the
//! queue is full the oldest lines make room (counted as dropped). One task owns the
//! connection: it sends a batch when `batch_lines` are waiting or `flush_every` has
//! passed, retries a batch that failed for a reason that may pass (connection,
//! timeout, 5xx, 429) with back-off, and gives up on one the server refused (other
//! 4xx: it will never be accepted). InfluxDB down, slow or answering errors costs
//! the caller a mutex push, nothing more.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::observer::{StoreState, StoreStatus, WriteObserver};
use super::retention::{self, Retention, RetentionStatus};
use super::target::{InfluxTarget, root_cause};
use crate::retry::Backoff;

/// Longest error text kept from an InfluxDB answer.
const MAX_ERROR_BODY: usize = 512;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Lines per request (InfluxDB recommends 5,000-10,000).
    pub batch_lines: usize,
    /// The longest a line waits before it is sent.
    pub flush_every: Duration,
    /// Lines held while InfluxDB is away; past this the oldest are dropped.
    pub queue_lines: usize,
    /// Per request.
    pub timeout: Duration,
    pub backoff: Backoff,
    /// On shutdown, how long to keep trying to send what is queued.
    pub drain_for: Duration,
    /// How long the database keeps what is written (serve's; load leaves it).
    pub retention: Retention,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            batch_lines: 5_000,
            flush_every: Duration::from_secs(1),
            queue_lines: 100_000,
            timeout: Duration::from_secs(5),
            backoff: Backoff {
                base: Duration::from_millis(250),
                max: Duration::from_secs(30),
            },
            drain_for: Duration::from_secs(2),
            retention: Retention::Leave,
        }
    }
}

/// Queued text, each entry one or more whole lines, with the total line count.
#[derive(Default)]
struct Queue {
    entries: VecDeque<(String, u64)>,
    lines: u64,
}

impl Queue {
    fn pop(&mut self) -> Option<(String, u64)> {
        let entry = self.entries.pop_front()?;
        self.lines -= entry.1;
        Some(entry)
    }
}

struct Shared {
    queue: Mutex<Queue>,
    capacity: usize,
    batch_lines: usize,
    wake: Notify,
    status: Mutex<StoreStatus>,
    observer: Arc<dyn WriteObserver>,
}

/// The handle callers push lines through; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    shared: Arc<Shared>,
    pub target: Arc<InfluxTarget>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Writer {
    /// The writer and the task that sends for it: spawn `task.run(stop)` on the
    /// caller's owner of tasks; it runs until `stop`, then spends up to `drain_for`
    /// sending what is queued.
    pub fn new(
        target: InfluxTarget,
        config: WriterConfig,
        http: reqwest::Client,
        observer: Arc<dyn WriteObserver>,
    ) -> (Writer, WriterTask) {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            capacity: config.queue_lines.max(1),
            batch_lines: config.batch_lines.max(1),
            wake: Notify::new(),
            status: Mutex::new(StoreStatus {
                state: StoreState::Idle,
                last_success: None,
                queued: 0,
                retention: RetentionStatus::pending(config.retention),
            }),
            observer,
        });
        let target = Arc::new(target);
        let task = WriterTask(Sender {
            shared: shared.clone(),
            target: target.clone(),
            config,
            http,
        });
        (Writer { shared, target }, task)
    }

    /// Queues one or more complete lines (each ending in `\n`). Never waits: past
    /// `queue_lines` the oldest lines are dropped to make room.
    pub fn push(&self, lines: String) {
        if lines.is_empty() {
            return;
        }
        let count = count_lines(&lines);
        let capacity = self.shared.capacity as u64;
        let (depth, dropped) = {
            let mut queue = lock(&self.shared.queue);
            queue.entries.push_back((lines, count));
            queue.lines += count;
            let mut dropped = 0;
            while queue.lines > capacity && queue.entries.len() > 1 {
                dropped += queue.pop().map_or(0, |(_, n)| n);
            }
            (queue.lines, dropped)
        };
        if dropped > 0 {
            self.shared.observer.dropped(dropped);
        }
        self.shared.observer.queue_depth(depth as usize);
        if depth >= self.shared.batch_lines as u64 {
            self.shared.wake.notify_one();
        }
    }

    pub fn status(&self) -> StoreStatus {
        let mut status = lock(&self.shared.status).clone();
        status.queued = lock(&self.shared.queue).lines as usize;
        status
    }
}

/// The sending half of a [`Writer`]: run it once, on a task with an owner.
pub struct WriterTask(Sender);

impl WriterTask {
    pub async fn run(self, stop: CancellationToken) {
        self.0.run(stop).await
    }
}

/// The task that owns the connection to InfluxDB.
struct Sender {
    shared: Arc<Shared>,
    target: Arc<InfluxTarget>,
    config: WriterConfig,
    http: reqwest::Client,
}

/// How one request ended.
enum Sent {
    Ok,
    /// Worth trying again (connection, timeout, 5xx, 429).
    Retry(String),
    /// The server refused these lines; they will never be accepted.
    Refused(String),
}

impl Sender {
    async fn run(self, stop: CancellationToken) {
        self.create_database(&stop).await;
        self.apply_retention().await;
        let mut batch: Vec<String> = Vec::new();
        let mut backoff: Option<Duration> = None;
        loop {
            if batch.is_empty() {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = self.shared.wake.notified() => {}
                    _ = tokio::time::sleep(self.config.flush_every) => {}
                }
                batch = self.take_batch();
                if batch.is_empty() {
                    continue;
                }
            }
            match self.send(&batch).await {
                Sent::Ok => {
                    self.succeeded(&batch);
                    batch.clear();
                    backoff = None;
                }
                Sent::Refused(why) => {
                    self.failed(&why);
                    self.shared.observer.dropped(lines_in(&batch));
                    tracing::warn!(influxdb = %self.target.display, error = %why, lines = lines_in(&batch), "InfluxDB refused a batch; dropped");
                    batch.clear();
                }
                Sent::Retry(why) => {
                    self.failed(&why);
                    let wait = self.config.backoff.next(backoff);
                    backoff = Some(wait);
                    tracing::warn!(influxdb = %self.target.display, error = %why, retry_in = ?wait, "InfluxDB write failed");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        self.drain(batch).await;
    }

    /// On shutdown: one more try for what is in hand and queued, within `drain_for`;
    /// whatever is left is counted as dropped.
    async fn drain(&self, mut batch: Vec<String>) {
        let deadline = Instant::now() + self.config.drain_for;
        loop {
            if batch.is_empty() {
                batch = self.take_batch();
            }
            if batch.is_empty() {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let sent = tokio::time::timeout(left, self.send(&batch)).await;
            match sent {
                Ok(Sent::Ok) => {
                    self.succeeded(&batch);
                    batch.clear();
                }
                _ => {
                    let queued = std::mem::take(&mut *lock(&self.shared.queue)).lines;
                    self.shared.observer.dropped(lines_in(&batch) + queued);
                    self.shared.observer.queue_depth(0);
                    return;
                }
            }
        }
    }

    fn take_batch(&self) -> Vec<String> {
        let mut queue = lock(&self.shared.queue);
        let mut batch = Vec::new();
        let mut lines = 0;
        while lines < self.shared.batch_lines as u64 {
            let Some((text, n)) = queue.pop() else { break };
            lines += n;
            batch.push(text);
        }
        let depth = queue.lines;
        drop(queue);
        self.shared.observer.queue_depth(depth as usize);
        batch
    }

    fn succeeded(&self, batch: &[String]) {
        self.shared.observer.written(lines_in(batch));
        let mut status = lock(&self.shared.status);
        status.state = StoreState::Ok;
        status.last_success = Some(Instant::now());
    }

    fn failed(&self, why: &str) {
        self.shared.observer.failed(why);
        lock(&self.shared.status).state = StoreState::Failing(why.to_owned());
    }

    fn request(&self, method: reqwest::Method, url: reqwest::Url) -> reqwest::RequestBuilder {
        self.target
            .request(&self.http, method, url, self.config.timeout)
    }

    async fn send(&self, batch: &[String]) -> Sent {
        let started = Instant::now();
        let sent = self.send_once(batch).await;
        self.shared.observer.request_took(started.elapsed());
        sent
    }

    async fn send_once(&self, batch: &[String]) -> Sent {
        let body: String = batch.concat();
        let request = self
            .request(reqwest::Method::POST, self.target.write_url.clone())
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Sent::Retry(format!("no answer within {:?}", self.config.timeout));
            }
            Err(e) => return Sent::Retry(format!("could not connect: {}", root_cause(&e))),
        };
        let status = response.status();
        if status.is_success() {
            return Sent::Ok;
        }
        let why = format!("HTTP {}: {}", status.as_u16(), error_text(response).await);
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Sent::Retry(why)
        } else {
            Sent::Refused(why)
        }
    }

    /// Once InfluxDB answers: the retention wish applied (1.x) or checked (2.x).
    async fn apply_retention(&self) {
        if self.config.retention == Retention::Leave {
            return;
        }
        let wish = self.config.retention;
        let state = retention::apply(&self.http, &self.target, wish, self.config.timeout).await;
        match &state {
            retention::RetentionState::Failed(why) => {
                tracing::warn!(influxdb = %self.target.display, error = %why, "could not set the retention policy; data is kept as InfluxDB keeps it")
            }
            retention::RetentionState::Differs { policy, actual } => {
                tracing::warn!(influxdb = %self.target.display, %policy, keeps = %actual, "the bucket's retention differs from --influxdb-retention; change it in InfluxDB")
            }
            retention::RetentionState::Applied { policy, was } => {
                tracing::info!(influxdb = %self.target.display, %policy, %was, "retention policy set to --influxdb-retention")
            }
            retention::RetentionState::Matched { policy } => {
                tracing::info!(influxdb = %self.target.display, %policy, "retention policy already as --influxdb-retention asks")
            }
            retention::RetentionState::Pending => {}
        }
        if let Some(status) = lock(&self.shared.status).retention.as_mut() {
            status.state = state;
        }
    }

    /// 1.x: `CREATE DATABASE` (a no-op when it exists), retried while InfluxDB is
    /// unreachable or failing; writes wait for it.
    async fn create_database(&self, stop: &CancellationToken) {
        let (Some(query_url), super::target::Version::V1 { database }) =
            (&self.target.query_url, &self.target.version)
        else {
            return;
        };
        let statement = format!("CREATE DATABASE \"{}\"", database.replace('"', "\\\""));
        let mut backoff = None;
        loop {
            let request = self
                .request(reqwest::Method::POST, query_url.clone())
                .form(&[("q", statement.as_str())]);
            let why = match request.send().await {
                Ok(r) if r.status().is_success() => return,
                // A user allowed to write but not to create databases: the database
                // may well exist, so go on and let the writes say.
                Ok(r) if r.status().is_client_error() => {
                    let why = error_text(r).await;
                    tracing::warn!(influxdb = %self.target.display, error = %why, "CREATE DATABASE refused; writing anyway");
                    return;
                }
                Ok(r) => format!(
                    "CREATE DATABASE answered HTTP {}: {}",
                    r.status().as_u16(),
                    error_text(r).await
                ),
                Err(e) => format!("could not connect: {}", root_cause(&e)),
            };
            self.failed(&why);
            let wait = self.config.backoff.next(backoff);
            backoff = Some(wait);
            tracing::warn!(influxdb = %self.target.display, error = %why, retry_in = ?wait, "InfluxDB database not ready");
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

fn count_lines(text: &str) -> u64 {
    text.bytes().filter(|b| *b == b'\n').count().max(1) as u64
}

fn lines_in(batch: &[String]) -> u64 {
    batch.iter().map(|l| count_lines(l)).sum()
}

/// The first `MAX_ERROR_BODY` bytes of an error answer, on one line.
async fn error_text(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    String::from_utf8_lossy(&body)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;

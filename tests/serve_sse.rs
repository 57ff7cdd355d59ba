//! The stream as Server-Sent Events: the same frames as the WebSocket, each an event
//! named by its type with its seq as id; a reconnect with `Last-Event-ID` gets exactly
//! what it missed.

use std::time::Duration;

use livegames::contract::schema;
use serde_json::Value;

use crate::support::*;

/// One event: (event, id, data).
type Event = (String, String, Value);

/// Reads events from an SSE response.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(url: &str, last_event_id: Option<u64>) -> Events {
        let mut request = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("the stream answers");
        Events {
            response,
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> Event {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}:")))
                        .map(|v| v.trim_start().to_owned())
                        .unwrap_or_default()
                };
                let data: Value = serde_json::from_str(&field("data")).expect("data is JSON");
                return (field("event"), field("id"), data);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("an event within 15 s")
                .expect("a chunk")
                .expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_as_events_is_the_contract_and_resumes_with_last_event_id() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let url = format!("{}/sse/live/{game}", server.http_url());
    let mut events = Events::open(&url, None).await;
    assert_eq!(events.response.status(), 200);
    assert!(
        events.response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (kind, id, snapshot) = events.next().await;
    assert_eq!(kind, "snapshot");
    assert_eq!(id, snapshot["seq"].to_string());
    assert!(schema::validate_frame(&snapshot).is_empty(), "{snapshot}");
    let mut seq = snapshot["seq"].as_u64().unwrap();
    let first = seq;
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let (kind, id, frame) = events.next().await;
        assert!(schema::validate_frame(&frame).is_empty(), "{frame}");
        assert_eq!(kind, frame["type"].as_str().unwrap());
        assert_eq!(id, frame["seq"].to_string(), "the id is the seq");
        if kind == "update" {
            assert_eq!(frame["seq"].as_u64().unwrap(), seq + 1, "{frame}");
            seq += 1;
            seen.push(frame);
        }
    }
    assert_eq!(metric(&server, "livegames_sse_connections ").await, 1.0);
    drop(events);

    // A reconnect after the second update: every update since is replayed, each
    // exactly as first sent (the third and fourth first), then a snapshot.
    let mut resumed = Events::open(&url, Some(first + 2)).await;
    let mut replayed = Vec::new();
    let snapshot = loop {
        let (kind, _, frame) = resumed.next().await;
        match kind.as_str() {
            "update" => replayed.push(frame),
            "snapshot" => break frame,
            _ => {}
        }
    };
    assert_eq!(replayed[..2], seen[2..], "{replayed:?}");
    let seqs: Vec<u64> = replayed
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(snapshot["seq"].as_u64(), seqs.last().copied(), "{snapshot}");
    drop(resumed);
    wait_for("the streams to close", || async {
        (metric(&server, "livegames_sse_connections ").await == 0.0).then_some(())
    })
    .await;

    let unknown = get(&format!("{}/sse/live/0000000000", server.http_url())).await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"], "unknown_game");
    server.stop().await.unwrap();
}

use std::time::Duration;

use tokio::net::TcpSocket;
use tokio_tungstenite::MaybeTlsStream;

use crate::support::*;

/// A client whose socket holds only a few KiB and that does not read.
async fn stalled_client(server: &livegames::serve::ServerHandle, path: &str) -> Client {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.local_addr).await.unwrap();
    let url = format!("{}{path}", server.ws_url());
    let (ws, _) = tokio_tungstenite::client_async(url.as_str(), MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    Client::new(ws)
}

/// Where a 4008 close's reason says to resume (`... resume with ?since=N`).
fn resume_point(close: &(u16, String)) -> u64 {
    close
        .1
        .rsplit("since=")
        .next()
        .unwrap()
        .parse()
        .expect("the reason says where to resume")
}

#[tokio::test]
async fn a_slow_client_is_closed_with_4008_while_others_keep_their_latency() {
    let mut config = fast_config();
    config.rate = 100.0;
    config.send_queue = 64;
    config.socket_send_buffer = Some(4096);
    config.ws.write_timeout = Duration::from_millis(300);
    // Long enough for the stalled client to wake up and read its close frame.
    config.ws.close_grace = Duration::from_secs(15);
    let server = start(config).await;
    let game = live_game(&server).await;

    let mut slow = stalled_client(&server, &format!("/ws/live/{game}")).await;
    let mut fast = connect(&server, &format!("/ws/live/{game}")).await;
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut last_seq = None;
        loop {
            tokio::select! {
                _ = &mut stop_rx => return (latencies, fast),
                f = fast.next_frame() => {
                    if matches!(f.kind.as_str(), "update" | "status" | "final") {
                        if let Some(prev) = last_seq {
                            assert_eq!(f.seq, prev + 1, "the fast client lost nothing");
                        }
                        last_seq = Some(f.seq);
                        latencies.push(f.received_at - f.ts);
                    }
                }
            }
        }
    });

    wait_for("the stalled client to be closed as slow", || async {
        (metric(&server, "livegames_ws_slow_consumer_closes_total").await >= 1.0).then_some(())
    })
    .await;
    // The game's writer had the stalled client's socket until it was full.
    assert!(metric(&server, "livegames_ws_handed_back_total").await >= 1.0);
    // Keep measuring the fast client for a moment after the slow one was dealt with.
    let published = game_seq(&server, &game).await;
    wait_for("more frames after the close", || async {
        (game_seq(&server, &game).await >= published + 20).then_some(())
    })
    .await;
    stop_tx.send(()).unwrap();
    let (mut latencies, _fast) = reader.await.unwrap();

    let close = slow
        .closed()
        .await
        .expect("a close frame, not a dropped connection");
    assert_eq!(close.0, 4008, "{close:?}");
    let since = resume_point(&close);

    assert!(
        latencies.len() >= 50,
        "only {} frames measured",
        latencies.len()
    );
    let p99 = percentile(&mut latencies, 0.99);
    assert!(
        p99 < 250_000,
        "fast client p99 {p99} µs while another client stalled"
    );

    // The slow client can resume where it was cut off.
    let mut resumed = connect(&server, &format!("/ws/live/{game}?since={since}")).await;
    let first = resumed.next_frame().await;
    assert!(first.kind != "error", "{:?}", first.value);
    assert_eq!(first.seq, since + 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_receiver_that_falls_a_ring_behind_between_writes_gets_4008_after_its_last_whole_frame() {
    // The game's writers wait 300 ms between rounds while 100 frames a second are
    // published into a ring of 8: every viewer's receiver falls behind between two
    // rounds, and the writer gives it back to its task saying so.
    let mut config = fast_config();
    config.rate = 100.0;
    config.send_queue = 8;
    config.ws.batch_window = Duration::from_millis(300);
    let server = start(config).await;
    let game = live_game(&server).await;

    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    // Every frame the client reads is checked in order (no gap may be sent).
    let close = client
        .closed()
        .await
        .expect("a close frame, not a dropped connection");
    assert_eq!(close.0, 4008, "{close:?}");
    let since = resume_point(&close);
    let last_data = client
        .frames
        .iter()
        .filter(|f| f.kind != "heartbeat")
        .map(|f| f.seq)
        .max()
        .expect("the snapshot at least");
    assert_eq!(since, last_data, "resume right after the last frame sent");

    let mut resumed = connect(&server, &format!("/ws/live/{game}?since={since}")).await;
    let first = resumed.next_frame().await;
    assert!(first.kind != "error", "{:?}", first.value);
    assert_eq!(first.seq, since + 1);
    server.stop().await.unwrap();
}

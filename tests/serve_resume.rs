use std::collections::BTreeSet;

use crate::support::*;

#[tokio::test]
async fn resume_with_since_loses_nothing_across_a_disconnect() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let mut first = connect(&server, &format!("/ws/live/{game}")).await;
    first.next_of("snapshot").await;
    let mut last_seen = 0;
    for _ in 0..5 {
        last_seen = first.next_of("update").await.seq;
    }
    drop(first);
    // Let the game move on while we are away.
    wait_for("20 frames published while disconnected", || async {
        (game_seq(&server, &game).await >= last_seen + 20).then_some(())
    })
    .await;

    let mut second = connect(&server, &format!("/ws/live/{game}?since={last_seen}")).await;
    let mut data_seqs = BTreeSet::new();
    let snapshot = loop {
        let f = second.next_frame().await;
        match f.kind.as_str() {
            "snapshot" => break f,
            "update" | "status" | "final" => {
                assert!(data_seqs.insert(f.seq), "duplicate {}", f.seq)
            }
            "heartbeat" => {}
            other => panic!("unexpected {other} during replay"),
        }
    };
    let expected: BTreeSet<u64> = (last_seen + 1..=snapshot.seq).collect();
    assert_eq!(
        data_seqs, expected,
        "every missed frame replayed exactly once, in order"
    );
    let next = second.next_of("update").await;
    assert_eq!(
        next.seq,
        snapshot.seq + 1,
        "live frames continue right after the snapshot"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn since_ahead_or_invalid_gets_an_error_then_a_snapshot() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let mut ahead = connect(&server, &format!("/ws/live/{game}?since=999999999")).await;
    let e = ahead.next_frame().await;
    assert_eq!(e.value["code"], "resume_ahead");
    assert_eq!(ahead.next_frame().await.kind, "snapshot");
    let mut bad = connect(&server, &format!("/ws/live/{game}?since=yesterday")).await;
    let e = bad.next_frame().await;
    assert_eq!(e.value["code"], "invalid_since");
    assert_eq!(bad.next_frame().await.kind, "snapshot");
    server.stop().await.unwrap();
}

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

/// Contract 1.1.0: each start of the server is a new epoch. A resume from the old
/// epoch gets `epoch_changed` and a fresh snapshot, not a replay of the new run's
/// frames that happen to carry the same seqs; a 1.0.0 client (no epoch) still resumes.
#[tokio::test]
async fn a_resume_across_a_restart_gets_epoch_changed_and_a_fresh_snapshot() {
    let first_run = start(fast_config()).await;
    let game = live_game(&first_run).await;
    let (_, list) = get_valid(
        &format!("{}/api/live/games", first_run.http_url()),
        livegames::contract::schema::Body::GamesList,
    )
    .await;
    assert_eq!(list["contract_version"], "1.3.0");
    let old_epoch = list["epoch"].as_str().expect("an epoch").to_owned();
    let mut client = connect(&first_run, &format!("/ws/live/{game}")).await;
    let snapshot = client.next_of("snapshot").await;
    assert_eq!(snapshot.value["epoch"], old_epoch.as_str());
    let last_seen = client.next_of("update").await.seq;
    drop(client);
    first_run.stop().await.unwrap();

    let second_run = start(fast_config()).await;
    wait_for("the new run to pass the old seq", || async {
        (game_seq(&second_run, &game).await >= last_seen + 3).then_some(())
    })
    .await;
    let (_, timeline) = get_valid(
        &format!("{}/api/games/{game}/timeline", second_run.http_url()),
        livegames::contract::schema::Body::Timeline,
    )
    .await;
    let new_epoch = timeline["epoch"].as_str().expect("an epoch").to_owned();
    assert_ne!(new_epoch, old_epoch, "a restart is a new epoch");

    let mut resumed = connect(
        &second_run,
        &format!("/ws/live/{game}?since={last_seen}&epoch={old_epoch}"),
    )
    .await;
    let refused = resumed.next_frame().await;
    assert_eq!(
        (refused.kind.as_str(), &refused.value["code"]),
        ("error", &serde_json::json!("epoch_changed")),
        "{}",
        refused.value
    );
    let message = refused.value["message"].as_str().unwrap();
    assert!(
        message.contains(&old_epoch) && message.contains(&new_epoch),
        "{message}"
    );
    let fresh = resumed.next_frame().await;
    assert_eq!(fresh.kind, "snapshot", "nothing replayed before it");
    assert_eq!(fresh.value["epoch"], new_epoch.as_str());

    // The same epoch resumes as before; so does a 1.0.0 client that sends none.
    for query in [
        format!("since={last_seen}&epoch={new_epoch}"),
        format!("since={last_seen}"),
    ] {
        let mut client = connect(&second_run, &format!("/ws/live/{game}?{query}")).await;
        let first = client.next_frame().await;
        assert_eq!(
            first.seq,
            last_seen + 1,
            "{query}: a replay: {}",
            first.value
        );
    }
    second_run.stop().await.unwrap();
}

use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn shutdown_sends_every_client_close_1001_before_exiting() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        let mut c = connect(&server, &format!("/ws/live/{game}")).await;
        c.next_of("snapshot").await;
        clients.push(c);
    }
    let stopped = tokio::spawn(server.stop());
    for c in &mut clients {
        let close = c.closed().await;
        assert_eq!(close.map(|c| c.0), Some(1001));
    }
    let result = tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the server stops in time");
    result.unwrap().expect("a clean stop");
}

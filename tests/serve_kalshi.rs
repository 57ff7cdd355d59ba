//! Kalshi sign-in: every request signed with RSA-PSS as Kalshi checks it, a mock
//! Kalshi that refuses what is not signed by its key, and a `/health` that says how
//! Kalshi is reached (streaming, polling, or a stream that is down, and why).

use std::path::{Path, PathBuf};
use std::process::Command;

use livegames::feeds::kalshi::auth::{Signer, Verifier};
use livegames::serve::{ServeConfig, ServerHandle};
use serde_json::Value;

use crate::support::tools::tool;
use crate::support::*;

/// The mock Kalshi's own key pair, as published with the recordings.
fn mock_key() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("mock-feeds/kalshi/mock-signing-key.pem")
}

/// A fresh RSA key pair made by `openssl` at test time: (private PEM, public PEM).
fn openssl_key_pair(name: &str) -> Option<(PathBuf, PathBuf)> {
    let openssl = tool("openssl", "openssl")?;
    let dir = std::env::temp_dir().join(format!("lg-kalshi-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (private, public) = (dir.join("key.pem"), dir.join("key.pub.pem"));
    let run = |args: &[&str]| {
        let out = Command::new(&openssl).args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", printed(&out));
    };
    let key = private.to_str().unwrap();
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        key,
    ]);
    run(&[
        "pkey",
        "-in",
        key,
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    Some((private, public))
}

/// Waits until Kalshi's stream is in `state` on `/health`; returns the page.
async fn kalshi_stream(server: &ServerHandle, state: &'static str) -> Value {
    wait_for(state, || async {
        let page = health_of(server).await;
        (page["sources"]["kalshi"]["stream"]["state"] == state).then_some(page)
    })
    .await
}

/// A server whose Kalshi is `upstream`'s mock, reached as if it were the real one.
fn on_upstream_kalshi(upstream: &ServerHandle, signer: Option<Signer>) -> ServeConfig {
    let base = format!("{}/mock/kalshi/trade-api/v2", upstream.http_url());
    ServeConfig {
        kalshi_url: Some(base),
        kalshi_signer: signer.map(std::sync::Arc::new),
        kalshi_poll: std::time::Duration::from_millis(200),
        ..fast_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_run_signs_and_its_mock_refuses_an_unsigned_handshake() {
    let server = start(fast_config()).await;
    let page = kalshi_stream(&server, "streaming").await;
    assert_eq!(page["sources"]["kalshi"]["stream"]["detail"], Value::Null);

    // The mock Kalshi answers an unsigned handshake as Kalshi does.
    let url = format!("{}/mock/kalshi/trade-api/ws/v2", server.ws_url());
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else {
        panic!("an unsigned handshake was taken: {refused:?}");
    };
    assert_eq!(response.status(), 401);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "authentication_error");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_key_streams_and_a_wrong_one_is_named_while_rest_goes_on() {
    let upstream = start(fast_config()).await;
    // The mock's own key: its signatures verify.
    let right = Signer::load("right-key", &mock_key()).unwrap();
    let server = start(on_upstream_kalshi(&upstream, Some(right))).await;
    let page = kalshi_stream(&server, "streaming").await;
    assert_eq!(page["status"], "healthy", "{page}");
    server.stop().await.unwrap();

    // Another key pair, made now: the handshake is refused, the key named, and
    // /health degraded although the REST snapshots keep Kalshi's prices coming.
    let Some((private, _)) = openssl_key_pair("wrong") else {
        return;
    };
    let wrong = Signer::load("wrong-key", &private).unwrap();
    let server = start(on_upstream_kalshi(&upstream, Some(wrong))).await;
    let page = kalshi_stream(&server, "down").await;
    let detail = page["sources"]["kalshi"]["stream"]["detail"].to_string();
    assert!(
        detail.contains("Kalshi refused the signature for key ID \\\"wrong-key\\\""),
        "{page}"
    );
    assert_eq!(page["status"], "degraded", "{page}");
    let page = wait_for("REST prices while the stream is refused", || async {
        let page = health_of(&server).await;
        (page["sources"]["kalshi"]["last_success_age_ms"]
            .as_u64()
            .is_some())
        .then_some(page)
    })
    .await;
    assert_eq!(page["sources"]["kalshi"]["stream"]["state"], "down");
    server.stop().await.unwrap();
    upstream.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_the_real_kalshi_is_polled_and_health_says_so() {
    let upstream = start(fast_config()).await;
    let server = start(on_upstream_kalshi(&upstream, None)).await;
    let page = kalshi_stream(&server, "polling").await;
    assert_eq!(page["status"], "healthy", "{page}");
    let detail = page["sources"]["kalshi"]["stream"]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("every 200ms"), "{detail}");
    // Prices still arrive: a live game's market moves on the stream.
    let game = live_game(&server).await;
    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    let snapshot = client.next_of("snapshot").await;
    assert!(
        !snapshot.value["data"]["market"].is_null(),
        "{}",
        snapshot.value
    );
    server.stop().await.unwrap();
    upstream.stop().await.unwrap();
}

/// Our signatures are what an independent RSA-PSS implementation (openssl) checks,
/// and the other way round: the mock's check accepts what openssl signs.
#[test]
fn signatures_agree_with_openssl() {
    let Some(openssl) = tool("openssl", "openssl") else {
        return;
    };
    let Some((private, public)) = openssl_key_pair("interop") else {
        return;
    };
    let dir = private.parent().unwrap().to_path_buf();
    let (timestamp, path) = (1_800_000_000_000_i64, "/trade-api/ws/v2");
    let message = format!("{timestamp}GET{path}");
    std::fs::write(dir.join("message"), &message).unwrap();
    let pss = [
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:digest",
    ];

    // Ours, checked by openssl.
    let signer = Signer::load("k", &private).unwrap();
    let headers = signer.headers("GET", path, timestamp);
    let signature = base64_decode(&headers[2].1);
    std::fs::write(dir.join("ours.sig"), signature).unwrap();
    let verify = Command::new(&openssl)
        .args(["dgst", "-sha256"])
        .args(pss)
        .arg("-verify")
        .arg(&public)
        .arg("-signature")
        .arg(dir.join("ours.sig"))
        .arg(dir.join("message"))
        .output()
        .unwrap();
    assert!(verify.status.success(), "openssl: {}", printed(&verify));

    // openssl's, checked by ours.
    let sign = Command::new(&openssl)
        .args(["dgst", "-sha256"])
        .args(pss)
        .arg("-sign")
        .arg(&private)
        .arg("-out")
        .arg(dir.join("theirs.sig"))
        .arg(dir.join("message"))
        .output()
        .unwrap();
    assert!(sign.status.success(), "openssl: {}", printed(&sign));
    let theirs = base64_encode(&std::fs::read(dir.join("theirs.sig")).unwrap());
    let verifier = Verifier::from_pem(&std::fs::read(&public).unwrap(), "public key").unwrap();
    let header = |name: &str| match name {
        "KALSHI-ACCESS-KEY" => Some("k".to_owned()),
        "KALSHI-ACCESS-TIMESTAMP" => Some(timestamp.to_string()),
        "KALSHI-ACCESS-SIGNATURE" => Some(theirs.clone()),
        _ => None,
    };
    assert_eq!(verifier.check(header, "GET", path, timestamp), Ok(()));
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_flag_alone_or_an_unreadable_key_is_a_usage_error() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_livegames"))
            .arg("serve")
            .args(args)
            .env_remove("KALSHI_KEY_ID")
            .env_remove("KALSHI_PRIVATE_KEY_FILE")
            .output()
            .unwrap()
    };
    let out = run(&["--kalshi-key-id", "k"]);
    assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
    assert!(
        printed(&out).contains("--kalshi-private-key"),
        "{}",
        printed(&out)
    );
    let out = run(&[
        "--kalshi-key-id",
        "k",
        "--kalshi-private-key",
        "/no/such/key.pem",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
    assert!(
        printed(&out).contains("cannot read the key file /no/such/key.pem"),
        "{}",
        printed(&out)
    );
}

/// Kalshi keeps a settled market's last order book (0.99/1.00); the quote of a final
/// game is its settlement, and its book is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_market_shows_its_settlement_not_its_last_book() {
    let server = start(fast_config()).await;
    let market = wait_for("a final game with its market", || async {
        let list: Value = get(&format!("{}/api/live/games", server.http_url()))
            .await
            .json()
            .await
            .unwrap();
        list["games"].as_array()?.iter().find_map(|g| {
            let latest = &g["latest"];
            (latest["state"] == "final" && !latest["market"]["settlement"].is_null())
                .then(|| latest["market"].clone())
        })
    })
    .await;
    let paid = market["settlement"].as_f64().unwrap();
    assert!(paid == 0.0 || paid == 1.0, "{market}");
    assert_eq!(market["last_price"], market["settlement"], "{market}");
    assert!(
        market["yes_bid"].is_null() && market["yes_ask"].is_null(),
        "{market}"
    );
    server.stop().await.unwrap();
}

/// Kalshi keeps its socket open after a bad command, and so does serve: one error
/// frame is counted; a run of them, or a refused subscription, makes the stream down
/// (and `/health` degraded, with the reason) until data flows again on the same socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_frames_are_counted_and_a_stream_that_keeps_erroring_is_down_on_the_same_socket() {
    use crate::support::replay::*;
    use serde_json::json;
    let game = espn_event(
        "401810999",
        "2026-01-15T00:30Z",
        ("BOS", "Boston Celtics"),
        ("NY", "New York Knicks"),
        in_progress(),
        json!({"id": "1", "text": "Brunson makes 3", "probability": {"homeWinPercentage": 0.64}}),
    );
    let (_, espn) = start_espn(scoreboard(vec![game])).await;
    let market = "KXNBAGAME-26JAN14BOSNYK-NYK";
    let listing = json!([kalshi_market(market, "0.6100", "0.6300", "0.6200")]);
    let (_, kalshi, kalshi_url) = start_kalshi_streaming(listing).await;
    let signer = Signer::load("test-key", &mock_key()).unwrap();
    let server = start(ServeConfig {
        espn_url: Some(espn),
        kalshi_url: Some(kalshi_url),
        kalshi_signer: Some(std::sync::Arc::new(signer)),
        ..fast_config()
    })
    .await;
    kalshi_stream(&server, "streaming").await;
    wait_for("the subscription", || async {
        kalshi.subscribed().then_some(())
    })
    .await;

    let error = |id: u64, code: u64, msg: &str| json!({"type": "error", "id": id, "msg": {"code": code, "msg": msg}});
    kalshi.send(error(3, 8, "Unknown channel name"));
    wait_for("the error frame counted", || async {
        let counted = metric(
            &server,
            "livegames_upstream_stream_error_frames_total{source=\"kalshi\",code=\"8\"}",
        )
        .await;
        (counted == 1.0).then_some(())
    })
    .await;
    let page = health_of(&server).await;
    assert_eq!(
        page["sources"]["kalshi"]["stream"]["state"], "streaming",
        "one error frame: {page}"
    );

    kalshi.send(error(4, 17, "Internal error"));
    kalshi.send(error(5, 17, "Internal error"));
    let page = kalshi_stream(&server, "down").await;
    let detail = page["sources"]["kalshi"]["stream"]["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("keeps sending error frames (3 in a row, last: error 17: Internal error)"),
        "{page}"
    );
    assert_eq!(page["status"], "degraded", "{page}");

    let ticker = json!({"type": "ticker", "sid": 1, "msg": {"market_ticker": market,
        "price_dollars": "0.6400", "yes_bid_dollars": "0.6300", "yes_ask_dollars": "0.6500", "ts": 1}});
    kalshi.send(ticker);
    kalshi_stream(&server, "streaming").await;

    kalshi.send(error(1, 16, "Market not found"));
    let page = kalshi_stream(&server, "down").await;
    assert!(
        page["sources"]["kalshi"]["stream"]["detail"]
            .as_str()
            .unwrap()
            .contains("Kalshi refused the ticker subscription (error 16: Market not found)"),
        "{page}"
    );
    assert_eq!(kalshi.handshakes(), 1, "the socket stayed open throughout");
    server.stop().await.unwrap();
}

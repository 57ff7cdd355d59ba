//! The one place that starts an embedded `livegames serve` for `load` and `smoke`
//! when they are given no URL: they ask a [`LocalServers`] and get a target, exactly
//! as if the user had named one.

use std::time::Duration;

use anyhow::Context;
use futures_util::future::BoxFuture;

use crate::client::local::{LocalServer, LocalServers};
use crate::client::{ConnectOptions, Target, discover};
use crate::outcome::{Classify, Failure};
use crate::serve::{ServeConfig, spawn};

/// How long an embedded server may take to hear from its (mock) upstreams; well
/// within a second on the built-in mocks.
const READY_WITHIN: Duration = Duration::from_secs(5);
/// How often readiness is asked.
const READY_POLL: Duration = Duration::from_millis(50);

/// Starts `livegames serve` with its defaults in this process, on a free loopback port.
pub(crate) struct EmbeddedServe;

impl LocalServers for EmbeddedServe {
    fn start(&self, rate: f64) -> BoxFuture<'_, Result<LocalServer, Failure>> {
        Box::pin(async move {
            let server = spawn(ServeConfig::embedded(rate), "127.0.0.1:0")
                .await
                .context("cannot start the embedded server")
                .failed()?;
            let target = Target::parse(&server.ws_url())
                .context("the embedded server's address")
                .failed()?;
            wait_for_live_games(&target).await;
            Ok(LocalServer::new(target, async move {
                let _ = server.stop().await;
            }))
        })
    }
}

/// An embedded server knows its games' states once its upstreams have answered; wait
/// for a live game, up to [`READY_WITHIN`] (the command then takes what it lists).
async fn wait_for_live_games(target: &Target) {
    let options = ConnectOptions {
        connect_timeout: READY_WITHIN,
        ..ConnectOptions::default()
    };
    let deadline = tokio::time::Instant::now() + READY_WITHIN;
    while tokio::time::Instant::now() < deadline {
        if let Ok(games) = discover::games(target, &options).await
            && games.iter().any(|g| g.live)
        {
            return;
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

//! What every check is given: the run's config, the schemas, one HTTP client, and the
//! target's URLs.

use std::time::Duration;

use url::Url;

use super::config::SmokeConfig;
use crate::client::http::{self, Answer};
use crate::client::{ConnectOptions, Target};
use crate::contract::schema::Schemas;

/// Time kept at the end of a check for saying goodbye (a close frame).
const CLOSE_SLACK: Duration = Duration::from_secs(1);

pub(crate) struct Ctx<'a> {
    pub config: &'a SmokeConfig,
    pub schemas: &'a Schemas,
    /// The connect options of every request and stream of the run.
    pub options: ConnectOptions,
    pub client: reqwest::Client,
}

impl<'a> Ctx<'a> {
    pub fn new(config: &'a SmokeConfig, schemas: &'a Schemas) -> Result<Self, http::ClientError> {
        // No single wait of a check may outlast --timeout, connecting included.
        let options = ConnectOptions {
            connect_timeout: config.timeout,
            ..config.connect.clone()
        };
        let client = http::client(&options)?;
        Ok(Self {
            config,
            schemas,
            options,
            client,
        })
    }

    pub fn target(&self) -> &Target {
        &self.config.target
    }

    /// How long any one check may wait.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// Why a check was cut off at `--timeout`.
    pub fn not_finished(&self) -> String {
        format!(
            "did not finish within --timeout ({})",
            humantime::format_duration(self.config.timeout)
        )
    }

    /// When a check that started at `started` must stop waiting, so that it ends
    /// (connection closed and all) within `--timeout`.
    pub fn deadline(&self, started: std::time::Instant) -> tokio::time::Instant {
        let closing = CLOSE_SLACK.min(self.config.timeout / 4);
        tokio::time::Instant::from_std(started) + self.config.timeout.saturating_sub(closing)
    }

    /// `http(s)://host:port`, as the checklist names the server.
    pub fn origin(&self) -> String {
        self.config.target.origin()
    }

    pub fn stream_url(&self, game: &str) -> Url {
        self.config.target.stream(game)
    }

    /// `GET path` on the server.
    pub async fn get(&self, path: &str) -> Answer {
        http::get(&self.client, self.config.target.api(path), self.timeout()).await
    }

    /// Sends a request built on [`Ctx::client`].
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        http::send(request, self.timeout()).await
    }
}

//! How a client command connects: the flags `load`, `smoke` and `contract record`
//! share, lowered into one [`ConnectOptions`], and the subscribe message sent right
//! after a handshake.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::values::{byte_size, header};
use crate::client::target::DEFAULT_MAX_MESSAGE;
use crate::client::template::Template;
use crate::client::{ConnectOptions, tls};
use crate::console::note;
use crate::load::plan::scenario::Scenario;
use crate::outcome::{Classify, Failure};
use crate::units::show_bytes;
use crate::wire::Offer;

#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Header for the WebSocket handshake and every HTTP request, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// WebSocket subprotocol to offer (repeatable); the server must pick one of them.
    #[arg(long = "subprotocol", value_name = "NAME")]
    pub subprotocols: Vec<String>,
    /// Trust this CA (a PEM file) besides the platform's roots.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Do not verify TLS certificates (said on the terminal and in the report).
    #[arg(long)]
    pub insecure: bool,
    // No clap default: a scenario file's value must not lose to it.
    #[arg(long, value_parser = byte_size, help = format!(
        "Largest WebSocket message accepted; a larger one ends its connection (error \
         message_too_large) [default: {}]",
        show_bytes(DEFAULT_MAX_MESSAGE)
    ))]
    pub max_message: Option<usize>,
    /// Offer permessage-deflate (RFC 7692): `on` as browsers offer it, `no-context`
    /// asking the server to compress each message on its own. Reports say what was
    /// agreed and the bytes on the wire.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "on", value_name = "OFFER")]
    pub compress: Option<Offer>,
}

impl ConnectArgs {
    /// These flags with a scenario file's: the flags win, headers add up.
    pub(super) fn with_scenario(&self, scenario: &Scenario) -> ConnectArgs {
        ConnectArgs {
            headers: scenario
                .headers
                .iter()
                .chain(&self.headers)
                .cloned()
                .collect(),
            subprotocols: if self.subprotocols.is_empty() {
                scenario.subprotocols.clone()
            } else {
                self.subprotocols.clone()
            },
            cacert: self.cacert.clone().or_else(|| scenario.cacert.clone()),
            insecure: self.insecure || scenario.insecure,
            max_message: self.max_message.or(scenario.max_message),
            compress: self.compress.or(scenario.compress),
        }
    }

    /// The options every connection of the command uses.
    pub fn lower(
        &self,
        connect_timeout: Duration,
        read_buffer: usize,
    ) -> Result<ConnectOptions, Failure> {
        if self.insecure && self.cacert.is_some() {
            return Err(Failure::usage(
                "--insecure verifies nothing, so --cacert would have no effect: give one of them",
            ));
        }
        let tls = match (&self.cacert, self.insecure) {
            (None, false) => None,
            (cacert, insecure) => Some(tls::client_config(cacert.as_deref(), insecure).usage()?),
        };
        if self.insecure {
            note!("livegames: warning: --insecure: TLS certificates are not verified");
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        Ok(ConnectOptions {
            connect_timeout,
            read_buffer,
            max_message: Some(self.max_message.unwrap_or(DEFAULT_MAX_MESSAGE)),
            headers,
            subprotocols: self.subprotocols.clone(),
            tls,
            insecure: self.insecure,
            compress: self.compress.unwrap_or_default(),
        })
    }
}

/// `--subscribe`: the message itself, or a file's (`@FILE`); JSON once its
/// placeholders are filled.
pub(super) fn subscribe_message(given: Option<&str>) -> Result<Option<Template>, Failure> {
    let Some(given) = given else {
        return Ok(None);
    };
    let text = match given.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("--subscribe @{path}"))
            .usage()?,
        None => given.to_owned(),
    };
    Template::parse(&text)
        .map(Some)
        .map_err(|e| Failure::usage(format!("--subscribe: {e}")))
}

//! What every handler shares: the hub, health and metrics, the scores cache, the fault
//! plan, the connection limit and the shutdown. Handlers import this; it imports none
//! of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;

use super::advertise::Advertise;
use super::config::WsSettings;
use super::observe::ops::OpsHistory;
use super::observe::{Metrics, SourceBoard, SourceEntry};
use super::scores::Scores;
use super::store::Store;
use super::stream::hub::Hub;
use crate::mocks::FaultPlan;
use crate::shutdown::Shutdown;

/// The state behind every route (cheap to clone: one `Arc`).
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<AppInner>);

pub(crate) struct AppInner {
    pub hub: Arc<Hub>,
    pub sources: Arc<SourceBoard>,
    pub metrics: Arc<Metrics>,
    pub scores: Scores,
    pub store: Store,
    pub faults: FaultPlan,
    pub admin_token: Option<String>,
    pub advertise: Advertise,
    pub conns: Arc<Semaphore>,
    pub ws: WsSettings,
    pub shutdown: Shutdown,
    pub started: Instant,
    pub local_addr: SocketAddr,
    /// The ops page's recent figures.
    pub ops: OpsHistory,
}

impl AppState {
    /// Every source's health: the feeds' board, and API-SPORTS from the scores
    /// service (it is called on demand, not watched).
    pub(crate) fn source_entries(&self) -> Vec<(crate::contract::Source, SourceEntry)> {
        let mut entries = self.0.sources.all();
        entries.push((crate::contract::Source::Apisports, self.0.scores.health()));
        entries
    }
}

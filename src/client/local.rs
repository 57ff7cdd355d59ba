//! A server this process starts for a command given no URL. `load` and `smoke` test
//! an embedded `livegames serve` exactly as they test anyone's: they are handed a
//! [`LocalServers`] (the CLI passes one that starts `serve`) and get back a
//! [`Target`], so neither imports the server.

use futures_util::future::BoxFuture;

use super::target::Target;
use crate::outcome::Failure;

/// A running local server: where it is, and how to stop it.
pub struct LocalServer {
    pub target: Target,
    stop: BoxFuture<'static, ()>,
}

impl LocalServer {
    /// `stop` runs (and is awaited) when the command is done with the server.
    pub fn new(target: Target, stop: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            target,
            stop: Box::pin(stop),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) {
        self.stop.await
    }
}

/// Starts local servers on demand.
pub trait LocalServers: Send + Sync {
    /// A server whose live games send `rate` frames per second, ready to be tested
    /// (its games known).
    fn start(&self, rate: f64) -> BoxFuture<'_, Result<LocalServer, Failure>>;
}

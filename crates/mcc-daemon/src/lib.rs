//! `mcc serve`: the authenticated REST API over mcc's cluster operations.
//!
//! The engine's labelled objects stay the only description of clusters
//! (so `mcc` with and without a daemon always agree); the daemon's own
//! SQLite file holds what the engine cannot: tokens, operations and their
//! progress, the event log and counters.

mod api;
mod app;
mod auth;
mod body;
mod cache;
mod cloud_api;
mod dashboard;
mod events;
mod events_api;
mod hosts_api;
pub mod listen;
mod metrics;
mod ops;
mod rate;
mod scope;
mod server;
mod services;
pub mod state_dir;
mod store;
mod volumes;

pub use api::served_routes;
pub use server::{serve, ServeOptions};
pub use store::token_secret;

/// Why the daemon cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state directory is unusable or held by another daemon.
    #[error("{0}")]
    State(String),
    /// The SQLite store failed.
    #[error("state database: {0}")]
    Store(String),
    /// A listen address or TLS file is wrong.
    #[error("{0}")]
    Listen(String),
    #[error(transparent)]
    Core(#[from] mcc_core::Error),
}

impl From<rusqlite::Error> for DaemonError {
    fn from(e: rusqlite::Error) -> Self {
        DaemonError::Store(e.to_string())
    }
}

pub type Result<T, E = DaemonError> = std::result::Result<T, E>;

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

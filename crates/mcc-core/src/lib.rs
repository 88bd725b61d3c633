//! mcc's library: the cluster model, the engine provider, and the cluster
//! operations built from them. The `mcc` binary only parses and prints.

pub mod error;
pub mod hosts;
pub mod input;
pub mod lock;
pub mod model;
pub mod provider;

pub use error::{Error, Result};
pub mod cluster;
pub mod context;

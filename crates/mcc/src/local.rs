//! The local backend: the library on the engine of this machine (or the
//! one `DOCKER_HOST` names), as opposed to a daemon through `remote`.

use std::sync::Arc;

use mcc_core::cluster::{Clusters, Reporter};
use mcc_core::Result;

/// The clusters of the engine mcc works on, reporting to `reporter`.
pub(crate) async fn connect(reporter: Arc<dyn Reporter>) -> Result<Clusters> {
    Ok(Clusters::new(
        mcc_core::provider::connect().await?,
        reporter,
    ))
}

/// A reporter that shows only notes (warnings), for commands whose
/// output is their result.
pub(crate) struct Notes;

impl Reporter for Notes {
    fn begin(&self, _: &str, _: usize) {}
    fn advance(&self, _: &str) {}
    fn end(&self, _: bool) {}
    fn note(&self, message: &str) {
        eprintln!("{message}");
    }
}

//! What the local backend's verbs report through when their output is
//! their result (the backend itself is [`crate::backend::Backend::Local`]).

use mcc_core::cluster::Reporter;

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

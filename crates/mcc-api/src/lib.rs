//! What the mcc daemon and its clients share: the request signature, the
//! shapes of requests, responses, errors, operations and events.

pub mod sign;
pub mod tunnel;
pub mod types;

pub use types::*;

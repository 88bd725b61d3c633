//! What the mcc daemon and its clients share: the request signature, the
//! shapes of requests, responses, errors, operations and events, of every
//! route (the cloud verbs' in [`cloud`], the hosts' in [`hosts`]).

pub mod cloud;
pub mod hosts;
pub mod sign;
pub mod tunnel;
pub mod types;

pub use cloud::*;
pub use hosts::*;
pub use types::*;

//! Request and response bodies of the hosts routes (`mcc host` through
//! `mcc serve`): the view is mcc-core's, as `mcc host list --output json`
//! prints it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use mcc_core::hosts::HostView;

/// PEM files of a client certificate, as paths on the daemon's machine.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostTls {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// `POST /api/v1/hosts`: `mcc host add`'s flags.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HostRequest {
    pub name: String,
    /// `unix:///path` or `tcp://HOST:PORT` (with `tls`).
    pub engine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// For an engine over TCP: its client certificate's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<HostTls>,
    /// The address the other hosts reach this one at, for the swarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_addr: Option<String>,
}

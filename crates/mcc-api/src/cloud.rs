//! Request and response bodies of the container-cloud routes (the CC
//! seed's verbs): VPCs, volumes, and the containers of `mcc run`. The
//! views are mcc-core's, as the clusters' are: the daemon sends what the
//! library returns.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use mcc_core::cluster::run::{ContainerMetrics, RmReport, RunSpec};
pub use mcc_core::cluster::volume::VolumeView;
pub use mcc_core::cluster::vpc::{IdDeleteReport, VpcView};
pub use mcc_core::provider::ContainerStatus;

/// `POST /api/v1/vpcs`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcRequest {
    pub name: String,
    pub cidr: String,
    /// Take a CIDR that is not a private block (`--allow-public-cidr`).
    #[serde(default, rename = "allow-public-cidr")]
    pub allow_public_cidr: bool,
}

/// `POST /api/v1/vpcs/delete` and `/api/v1/volumes/delete`: all or
/// nothing.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcDeleteRequest {
    pub ids: Vec<String>,
}

/// `POST /api/v1/volumes`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeRequest {
    pub name: String,
    /// Bytes, or with K/M/G/T: "64M", "1G".
    pub size: String,
    #[serde(default)]
    pub persistent: bool,
}

/// `POST /api/v1/containers/address`: where a port of a container is.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressRequest {
    pub id: String,
    pub port: u16,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AddressView {
    /// `IP:PORT` as the daemon's host reaches it.
    pub address: String,
}

/// The query of `GET /api/v1/containers/{id}/forward`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ForwardQuery {
    /// The container's TCP port.
    pub port: u16,
}

impl ForwardQuery {
    /// The path (with this query) of the forward WebSocket of container `id`.
    pub fn path(&self, id: &str) -> String {
        format!("/api/v1/containers/{id}/forward?port={}", self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bodies the CLI sends are the ones the daemon took before they
    /// were typed on both sides.
    #[test]
    fn requests_keep_their_wire_names() {
        let v = serde_json::to_value(VpcRequest {
            name: "a".into(),
            cidr: "10.9.0.0/24".into(),
            allow_public_cidr: true,
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name": "a", "cidr": "10.9.0.0/24", "allow-public-cidr": true})
        );
        let r: VpcRequest = serde_json::from_str(r#"{"name":"a","cidr":"x"}"#).unwrap();
        assert!(!r.allow_public_cidr);
        assert!(
            serde_json::from_str::<VolumeRequest>(r#"{"name":"a","size":"1M","x":1}"#)
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
        assert_eq!(
            ForwardQuery { port: 80 }.path("abc"),
            "/api/v1/containers/abc/forward?port=80"
        );
    }
}

//! The cluster model: names, specs, address plans, hosts files. Pure; no I/O
//! besides reading a cluster file or checking a context folder.

pub mod address;
pub mod cidr;
pub mod docker_workers;
pub mod duration;
pub mod export;
pub mod flags;
pub mod hosts;
pub mod image;
pub mod members;
pub mod names;
pub mod options;
pub mod paths;
pub mod placement;
pub mod record;
pub mod size;
pub mod spec;

pub use address::AddressPlan;
pub use cidr::Ipv4Cidr;
pub use names::{labels, ClusterName, NodeId, Role, INDEX_SCHEMA, SCHEMA_VERSION};
pub use options::{NetworkDriver, NodeOptions};
pub use record::ClusterRecord;
pub use spec::{ClusterSpec, Device, SpecInput, META_MOUNT};

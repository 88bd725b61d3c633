//! Shared helpers of mcc's integration tests: they run the built `mcc`
//! binary against the local Docker engine and check the engine's state
//! through mcc-core's own provider (never the docker CLI).
//!
//! Every test owns a cluster name `it-<tag>-<pid>`; a [`Cluster`] guard
//! removes every object labelled with it before the test starts and when
//! it ends (pass or fail), straight through the engine API so that a bug
//! in `mcc delete` cannot leave litter behind.
//!
//! By what they help with: `engine` (the engine's objects, the docker CLI,
//! a private engine), `hosts` (several engines in one swarm,
//! `scripts/hosts`; `span`: a cluster over them), `cluster` (the guard, subnets, files), `mcc` (running
//! the binary and checking what it made), `daemon` (`mcc serve` for a
//! test), `registry` (a stand-in registry).

#![allow(dead_code)] // each test binary uses a different subset

pub mod registry;

mod cluster;
mod daemon;
mod engine;
mod hosts;
mod mcc;
mod span;

// (each test binary uses a different subset)
#[allow(unused_imports)]
pub use {cluster::*, daemon::*, engine::*, hosts::*, mcc::*, span::*};

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mcc_core::model::labels;
use mcc_core::provider::{ContainerInfo, DockerProvider, Engine};

pub const BUSYBOX: &str = "mcc-test/busybox:latest";
pub const DEBIAN: &str = "mcc-test/debian:bookworm";
/// Debian with docker.io: the workers of `--docker-workers` clusters.
pub const DOCKER_IMAGE: &str = "mcc-test/docker:bookworm";

/// Longest an mcc command may take before the test gives up on it.
pub const TIMEOUT: Duration = Duration::from_secs(180);

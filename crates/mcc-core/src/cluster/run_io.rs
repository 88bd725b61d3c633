//! What `mcc status` (all of them), `/metrics`, `mcc run --attach` and
//! `mcc local-remote serve` need of `run` containers, the same locally and
//! in the daemon: the list of them, a container's output from its start,
//! its exit code once it stops, and the address a port of it is reached
//! at.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::Clusters;
use crate::error::{Error, Result};
use crate::model::labels;
use crate::provider::{ContainerInfo, ContainerStatus, OutputStream};

impl Clusters {
    /// Every container made by `mcc run`, briefly: one engine call.
    pub async fn runs(&self) -> Result<Vec<ContainerInfo>> {
        self.provider
            .containers(labels::ROLE, Some(labels::role::RUN))
            .await
    }

    /// The status of every container made by `mcc run`, oldest first by
    /// ID order of the engine's list.
    pub async fn run_statuses(&self) -> Result<Vec<ContainerStatus>> {
        let mut out = Vec::new();
        for c in self.runs().await? {
            // one removed meanwhile is simply not there
            if let Some(s) = self.provider.container_status(&c.id).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// A `run` container's output from its start, until it stops.
    pub async fn run_output(&self, id: &str) -> Result<OutputStream> {
        let s = self
            .run_status(id)
            .await?
            .ok_or_else(|| no_such(id, "--attach"))?;
        Ok(self.provider.follow_logs(&s.id))
    }

    /// Waits for a `run` container to stop; its exit code. A container
    /// removed meanwhile is an error.
    pub async fn run_exit_code(&self, id: &str) -> Result<i64> {
        // resolved once: a start of an ID stays this container's
        let full = self
            .resolve_run(id)
            .await?
            .ok_or_else(|| no_such(id, "--attach"))?;
        let mut pause = Duration::from_millis(20);
        loop {
            match self.run_status(&full).await? {
                Some(s) if s.state == "running" || s.state == "created" => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Some(s) => return Ok(s.exit_code.unwrap_or(0)),
                None => {
                    return Err(Error::Failed(format!(
                        "container {id} was removed before it exited; its exit code is lost"
                    )))
                }
            }
        }
    }

    /// Where `port` of a running `run` container is reached from this
    /// host: its address on its network.
    pub async fn run_address(&self, id: &str, port: u16) -> Result<SocketAddr> {
        if port == 0 {
            return Err(Error::Invalid(
                "--container-port 0 is not a port; give 1 to 65535".into(),
            ));
        }
        let s = self
            .run_status(id)
            .await?
            .ok_or_else(|| no_such(id, "--container-id"))?;
        if s.state != "running" {
            return Err(Error::Conflict(format!(
                "--container-id {id}: the container is {}, not running",
                s.state
            )));
        }
        let ip = s
            .ips
            .values()
            .find_map(|ip| ip.parse::<IpAddr>().ok())
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "--container-id {id}: the container has no address (run with --vpc, or on \
                     the default bridge)"
                ))
            })?;
        Ok(SocketAddr::new(ip, port))
    }
}

fn no_such(id: &str, flag: &str) -> Error {
    Error::NotFound(format!(
        "{flag} {id}: no such container (`mcc status {id}`)"
    ))
}

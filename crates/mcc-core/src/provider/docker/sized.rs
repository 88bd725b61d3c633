//! Sized volumes on this machine's engine: an ext4 image on a loop device
//! (`loopfs`) that the `local` driver mounts.

#[allow(unused_imports)]
use super::*;

impl DockerProvider {
    /// The engine's record of a sized volume: an ext4 file system on
    /// `device`, mounted by the `local` driver.
    pub(super) async fn loop_volume(
        &self,
        name: &str,
        device: String,
        labels: &Labels,
    ) -> Result<VolumeInfo> {
        self.new_volume(VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: Some("local".into()),
            driver_opts: Some(HashMap::from([
                ("type".to_string(), "ext4".to_string()),
                ("device".to_string(), device),
            ])),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
    }

    pub(super) async fn create_sized_on_loop(
        &self,
        name: &str,
        size: u64,
        labels: &Labels,
    ) -> Result<VolumeInfo> {
        if !self.local() {
            return Err(Error::Invalid(format!(
                "sized volumes are ext4 file systems on the engine's machine, and the engine is \
                 at {}: run mcc there",
                self.host
            )));
        }
        let n = name.to_string();
        let device = tokio::task::spawn_blocking(move || loopfs::make(&n, size))
            .await
            .map_err(|e| Error::Failed(format!("making volume {name}: {e}")))??;
        match self.loop_volume(name, device, labels).await {
            Ok(v) => Ok(v),
            Err(e) => {
                let n = name.to_string();
                let _ = tokio::task::spawn_blocking(move || loopfs::release(&n)).await;
                Err(e)
            }
        }
    }

    /// Makes sure a sized volume can be mounted and holds its own data:
    /// after a host restart its image file is attached again and the
    /// engine's record pointed at that device (never at one that holds
    /// another file). Any other volume (no image file of mcc's here) is
    /// left to the engine.
    pub(super) async fn prepare_sized_on_loop(&self, name: &str) -> Result<()> {
        if !self.local() || !loopfs::image_path(name).is_ok_and(|p| p.exists()) {
            return Ok(());
        }
        let v = match self.docker.inspect_volume(name).await {
            Ok(v) => v,
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Err(Error::NotFound(format!(
                    "volume {name} is gone from the engine (`mcc volume list`)"
                )))
            }
            Err(e) => return Err(map_err(format!("inspecting volume {name}"))(e)),
        };
        // only what mcc made: an ext4 file system on a loop device
        if v.driver != "local"
            || v.options.get("type").map(String::as_str) != Some("ext4")
            || v.labels.get(labels::ROLE).map(String::as_str) != Some("volume")
        {
            return Ok(());
        }
        let old = v.options.get("device").cloned();
        let (n, o) = (name.to_string(), old.clone());
        let Some(device) = tokio::task::spawn_blocking(move || loopfs::reattach(&n, o.as_deref()))
            .await
            .map_err(|e| Error::Failed(format!("attaching volume {name}: {e}")))??
        else {
            return Ok(());
        };
        // The engine's record names a device that no longer holds this
        // volume (the host restarted): point it at the one that does.
        let old = old.unwrap_or_else(|| "none".into());
        let users = self.volume_users(name).await?;
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "volume {name}: its engine record names {old}, which no longer holds its data \
                 (the host restarted?), and containers still name it: {}; remove them (mcc rm, \
                 or docker rm) and mcc will attach it again",
                users.join(", ")
            )));
        }
        self.remove_engine_volume(name).await?;
        self.loop_volume(name, device.clone(), &v.labels)
            .await
            .map_err(|e| {
                Error::Failed(format!(
                    "volume {name}: its data is on {device} now, but the engine's record could \
                     not be made again ({e}); run again to retry"
                ))
            })?;
        Ok(())
    }

    pub(super) async fn mark_sized_used_on_loop(&self, name: &str) -> Result<()> {
        if !self.local() {
            return Ok(());
        }
        let n = name.to_string();
        tokio::task::spawn_blocking(move || loopfs::mark_used(&n))
            .await
            .map_err(|e| Error::Failed(format!("marking volume {name} used: {e}")))?
    }

    pub(super) async fn sized_used_on_loop(&self, name: &str) -> Result<bool> {
        if !self.local() {
            return Ok(false);
        }
        let n = name.to_string();
        tokio::task::spawn_blocking(move || loopfs::was_used(&n))
            .await
            .map_err(|e| Error::Failed(format!("reading whether volume {name} was used: {e}")))?
    }

    pub(super) async fn own_sized_root_on_loop(
        &self,
        name: &str,
        uid: u32,
        gid: u32,
    ) -> Result<()> {
        if !self.local() {
            return Ok(());
        }
        let v = self
            .docker
            .inspect_volume(name)
            .await
            .map_err(map_err(format!("inspecting volume {name}")))?;
        let device = match v.options.get("device") {
            Some(d) if v.options.get("type").map(String::as_str) == Some("ext4") => d.clone(),
            _ => return Ok(()),
        };
        let n = name.to_string();
        tokio::task::spawn_blocking(move || loopfs::own_root(&n, &device, uid, gid))
            .await
            .map_err(|e| Error::Failed(format!("giving volume {name} to {uid}:{gid}: {e}")))?
    }

    /// Detaches and removes what held a sized volume's data on this
    /// machine, if it was one (its image file is there).
    pub(super) async fn release_sized(&self, name: &str) {
        if !self.local() || !loopfs::image_path(name).is_ok_and(|p| p.exists()) {
            return;
        }
        let n = name.to_string();
        let _ = tokio::task::spawn_blocking(move || loopfs::release(&n)).await;
    }
}

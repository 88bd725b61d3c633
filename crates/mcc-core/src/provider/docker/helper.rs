//! A file rewritten in place by a short-lived helper container of mcc's
//! own (so that no node takes part, and running nodes that bind the file
//! see the new content).

#[allow(unused_imports)]
use super::*;

impl DockerProvider {
    pub(super) async fn rewrite_with_helper(
        &self,
        volume: &str,
        path: &str,
        content: &[u8],
        helper: &Helper,
    ) -> Result<()> {
        // The engine's copy API replaces a file by a new one (a new inode),
        // which containers binding the old file never see; and a node must
        // not be asked to do it (its root may have changed its shell, and
        // the volume is read-only there). So a short-lived container of
        // mcc's own, with no network, does the one write.
        const MOUNT: &str = "/mcc-volume";
        let text = String::from_utf8(content.to_vec())
            .map_err(|_| Error::Failed(format!("{path}: content to write is not UTF-8")))?;
        if text.contains('\0') {
            return Err(Error::Failed(format!("{path}: content holds a NUL byte")));
        }
        if path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(Error::Failed(format!("{path}: not a plain relative path")));
        }
        let name = helper_name(volume, "write");
        let mut labels = helper.labels.clone();
        labels.insert(
            crate::model::labels::ROLE.into(),
            crate::model::labels::role::HELPER.into(),
        );
        let spec = ContainerSpec {
            name,
            image: helper.image.clone(),
            entrypoint: Some(vec!["/bin/sh".into()]),
            // Fixed script; the content and the path are its arguments.
            // `1<>` opens the file for writing without truncating it.
            cmd: Some(vec![
                "-c".into(),
                "printf '%s' \"$1\" 1<>\"$2\"".into(),
                "mcc-rewrite".into(),
                text,
                format!("{MOUNT}/{path}"),
            ]),
            user: Some("0".into()),
            labels,
            no_network: true,
            mounts: vec![Mount::Volume {
                name: volume.into(),
                target: MOUNT.into(),
                labels: Labels::new(),
                read_only: false,
            }],
            ..Default::default()
        };
        self.run_helper(&spec)
            .await
            .map_err(|e| Error::Failed(format!("rewriting {path} on volume {volume}: {e}")))
    }

    /// Runs `spec` (a helper of mcc's own: no network, a fixed script) to
    /// its end and removes it; an error when it could not run or exited
    /// non-zero, with what it printed.
    pub(super) async fn run_helper(&self, spec: &ContainerSpec) -> Result<()> {
        let name = &spec.name;
        self.create_container_as_is(spec).await?;
        let ran = async {
            self.docker
                .start_container(name, None)
                .await
                .map_err(map_err(format!("starting {name}")))?;
            let mut wait = self.docker.wait_container(name, None);
            let code = match wait.next().await {
                Some(Ok(r)) => r.status_code,
                // a non-zero exit comes as an error carrying the code
                Some(Err(BollardError::DockerContainerWaitError { code, .. })) => code,
                Some(Err(e)) => return Err(map_err(format!("waiting for {name}"))(e)),
                None => -1,
            };
            if code != 0 {
                let mut logs = self.follow_logs(name);
                let mut out = String::new();
                while let Some(Ok(Chunk::Stdout(b) | Chunk::Stderr(b))) = logs.next().await {
                    out.push_str(&String::from_utf8_lossy(&b));
                }
                return Err(Error::Failed(format!(
                    "{name} exited with {code}: {}",
                    out.trim()
                )));
            }
            Ok(())
        }
        .await;
        let removed = self.remove_container(name).await;
        ran?;
        removed.map(|_| ())
    }
}

/// A helper's container name: `<about>.<what>.<unique>`.
pub(super) fn helper_name(about: &str, what: &str) -> String {
    format!(
        "{about}.{what}.{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
            ^ u64::from(std::process::id())
    )
}

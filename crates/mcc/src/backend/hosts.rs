//! `mcc host`'s verbs as [`Backend`] methods: on the user's hosts file,
//! or through the daemon on its own (`mcc_api::hosts`).

use mcc_api::{HostRequest, HostView};
use mcc_core::hosts::{self, AddHost, HostsFile};
use mcc_core::Result;
use reqwest::Method;

use super::Backend;
use crate::remote::{self, body};

/// The user's hosts file.
fn user_file() -> Result<HostsFile> {
    Ok(HostsFile::at(HostsFile::default_path()?))
}

impl Backend {
    pub(crate) async fn host_add(&self, req: &AddHost) -> Result<HostView> {
        match self {
            Backend::Daemon(c) => {
                let r = HostRequest {
                    name: req.name.clone(),
                    engine: req.engine.clone(),
                    zone: req.zone.clone(),
                    tls: req.tls.as_ref().map(|t| mcc_api::HostTls {
                        ca: t.ca.to_string_lossy().into_owned(),
                        cert: t.cert.to_string_lossy().into_owned(),
                        key: t.key.to_string_lossy().into_owned(),
                    }),
                    advertise_addr: req.advertise.clone(),
                };
                c.call(Method::POST, "/api/v1/hosts", Some(&body(&r))).await
            }
            Backend::Local(_) => hosts::add(&user_file()?, req).await,
        }
    }

    pub(crate) async fn host_list(&self) -> Result<Vec<HostView>> {
        match self {
            Backend::Daemon(c) => c.call(Method::GET, "/api/v1/hosts", None).await,
            Backend::Local(_) => hosts::list(&user_file()?).await,
        }
    }

    /// Removes host `name` (`lost`: gone for good).
    pub(crate) async fn host_remove(&self, name: &str, lost: bool) -> Result<()> {
        match self {
            Backend::Daemon(c) => {
                hosts::validate_name("host", name)?;
                let path = format!("/api/v1/hosts/{name}?lost={lost}");
                let res = c.send(Method::DELETE, &path, Vec::new()).await?;
                let status = res.status().as_u16();
                if status >= 300 {
                    let bytes = res.bytes().await.unwrap_or_default();
                    return Err(remote::answer_error(&c.endpoint.url, status, &bytes));
                }
                Ok(())
            }
            Backend::Local(_) => {
                let file = user_file()?;
                match lost {
                    true => hosts::remove_lost(&file, name).await?,
                    false => hosts::remove(&file, name).await?,
                };
                Ok(())
            }
        }
    }
}

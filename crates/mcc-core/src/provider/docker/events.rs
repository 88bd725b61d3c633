//! The engine's event stream and a container's resource use, as mcc's
//! own types.

#[allow(unused_imports)]
use super::*;

impl DockerProvider {
    /// The engine's events that pass `filters`, from `since_nano` on.
    pub(super) fn event_stream(
        &self,
        since_nano: Option<i64>,
        filters: HashMap<String, Vec<String>>,
    ) -> crate::provider::EventStream {
        let opts = bollard::query_parameters::EventsOptions {
            since: since_nano.map(|n| format!("{}.{:09}", n / 1_000_000_000, n % 1_000_000_000)),
            until: None,
            filters: Some(filters),
        };
        crate::provider::until_lost(
            self.docker
                .events(Some(opts))
                .map_err(|e| map_err("reading the engine's events")(e))
                .map_ok(|m| {
                    let actor = m.actor.unwrap_or_default();
                    let labels: Labels = actor.attributes.unwrap_or_default();
                    let object = match m.typ.map(|t| t.to_string()).as_deref() {
                        Some("container") => EventObject::Container,
                        Some("network") => EventObject::Network,
                        Some("volume") => EventObject::Volume,
                        _ => EventObject::Other,
                    };
                    let action = action_of(m.action.as_deref().unwrap_or_default(), &labels);
                    EngineEvent {
                        object,
                        action,
                        id: actor.id.unwrap_or_default(),
                        name: labels.get("name").cloned().unwrap_or_default(),
                        labels,
                        time_nano: m.time_nano.unwrap_or(0),
                        detail: String::new(),
                    }
                }),
        )
    }

    pub(super) fn stats_stream(&self, container: &str) -> crate::provider::StatsStream {
        let opts = bollard::query_parameters::StatsOptions {
            stream: true,
            one_shot: false,
        };
        let op = format!("reading the resource use of {container}");
        Box::pin(
            self.docker
                .stats(container, Some(opts))
                .map_err(move |e| map_err(op.clone())(e))
                .map_ok(|s| {
                    let cpu = s.cpu_stats.unwrap_or_default();
                    let mem = s.memory_stats.unwrap_or_default();
                    let (rx, tx) = s
                        .networks
                        .unwrap_or_default()
                        .values()
                        .fold((0, 0), |(r, t), n| {
                            (r + n.rx_bytes.unwrap_or(0), t + n.tx_bytes.unwrap_or(0))
                        });
                    let (blk_read, blk_write) = s
                        .blkio_stats
                        .and_then(|b| b.io_service_bytes_recursive)
                        .unwrap_or_default()
                        .iter()
                        .fold((0, 0), |(r, w), e| {
                            let v = e.value.unwrap_or(0);
                            match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
                                Some("read") => (r + v, w),
                                Some("write") => (r, w + v),
                                _ => (r, w),
                            }
                        });
                    StatsSample {
                        blk_read_bytes: blk_read,
                        blk_write_bytes: blk_write,
                        cpu_ns: cpu.cpu_usage.and_then(|u| u.total_usage).unwrap_or(0),
                        system_cpu_ns: cpu.system_cpu_usage.unwrap_or(0),
                        online_cpus: cpu.online_cpus.unwrap_or(0),
                        memory_bytes: mem.usage.unwrap_or(0),
                        memory_limit_bytes: mem.limit.unwrap_or(0),
                        rx_bytes: rx,
                        tx_bytes: tx,
                    }
                }),
        )
    }
}

/// Docker's action word as mcc's (`exec_start: sh` and the like are
/// `Other`); a `die` carries the exit code of the `exitCode` attribute.
fn action_of(action: &str, attributes: &Labels) -> EventAction {
    match action.split(':').next().unwrap_or_default() {
        "create" => EventAction::Created,
        "start" => EventAction::Started,
        "restart" => EventAction::Restarted,
        "stop" => EventAction::Stopped,
        "kill" => EventAction::Killed,
        "die" => EventAction::Died {
            code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
        },
        "oom" => EventAction::OutOfMemory,
        "destroy" => EventAction::Removed,
        "pause" => EventAction::Paused,
        "unpause" => EventAction::Unpaused,
        "rename" => EventAction::Renamed,
        "update" => EventAction::Updated,
        "health_status" => EventAction::Health,
        "connect" => EventAction::Connected,
        "disconnect" => EventAction::Disconnected,
        _ => EventAction::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_actions_read_as_mcc_s() {
        let none = Labels::new();
        let died = Labels::from([("exitCode".to_string(), "137".to_string())]);
        assert_eq!(
            action_of("die", &died),
            EventAction::Died { code: Some(137) }
        );
        assert_eq!(action_of("die", &none), EventAction::Died { code: None });
        assert_eq!(action_of("destroy", &none), EventAction::Removed);
        assert_eq!(
            action_of("health_status: healthy", &none),
            EventAction::Health
        );
        assert_eq!(
            action_of("exec_start: sh -c true", &none),
            EventAction::Other
        );
        assert_eq!(action_of("archive-path", &none), EventAction::Other);
        for a in ["create", "start", "stop", "kill", "oom", "pause", "rename"] {
            assert_eq!(action_of(a, &none).as_str(), a);
        }
    }
}

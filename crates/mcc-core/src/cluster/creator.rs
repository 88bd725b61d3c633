//! Who is creating a cluster: `host/pid/start-time` of the mcc process, kept
//! on the meta container so that `gc` leaves a create in progress alone.

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Start time of a process in clock ticks since boot (field 22 of stat);
/// with the pid it names a process even after pids are reused.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name may hold spaces: fields start after the last ')'
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This process, as written in the creator label.
pub fn current() -> String {
    let pid = std::process::id();
    format!("{}/{pid}/{}", hostname(), start_time(pid).unwrap_or(0))
}

/// Whether the process named by a creator label is still running here.
/// A creator on another host is taken as alive: this host cannot tell.
pub fn alive(label: &str) -> bool {
    let mut parts = label.rsplitn(3, '/');
    let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if host != hostname() {
        return true;
    }
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    start_time(pid) == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive() {
        assert!(alive(&current()));
    }

    #[test]
    fn dead_or_garbled_creators() {
        let host = hostname();
        assert!(!alive(&format!("{host}/4194304/1")), "no such pid");
        let me = std::process::id();
        assert!(
            !alive(&format!("{host}/{me}/1")),
            "same pid, other start time"
        );
        assert!(!alive("garbage"));
        assert!(alive("some-other-host/1/1"));
    }
}

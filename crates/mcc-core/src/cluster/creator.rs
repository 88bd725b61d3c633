//! Which mcc process is making a cluster or a node, written on what it
//! makes, so that `gc` leaves work in progress alone and rollbacks remove
//! only their own objects.
//!
//! A hostname does not name a process: two CI containers on one engine may
//! share it, and each would then take the other's running creates for dead
//! ones. The label holds the kernel's boot id and the pid namespace with
//! the pid and its start time: a process is checked only from the same
//! kernel and pid namespace, where those four name it exactly. From
//! anywhere else it cannot be checked, so the label also holds a deadline
//! (the operation's timeout with a margin) after which the work is taken
//! as abandoned.

use std::time::{SystemTime, UNIX_EPOCH};

const VERSION: &str = "c2";

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Identifies this kernel instance (changes at every boot).
fn boot_id() -> String {
    read_trimmed("/proc/sys/kernel/random/boot_id")
}

/// The pid namespace this process sees pids in, e.g. `4026531836`.
fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|p| {
            let s = p.to_string_lossy().into_owned();
            let inner = s.strip_prefix("pid:[")?.strip_suffix(']')?.to_string();
            Some(inner)
        })
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

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// This process, as written in the creator label, for work that may take
/// up to `budget_secs` seconds.
pub fn current_for(budget_secs: u64) -> String {
    let pid = std::process::id();
    format!(
        "{VERSION}/{}/{}/{pid}/{}/{}",
        boot_id(),
        pid_namespace(),
        start_time(pid).unwrap_or(0),
        now().saturating_add(budget_secs)
    )
}

/// Whether two labels name the same process (deadlines aside).
pub fn same_process(a: &str, b: &str) -> bool {
    let key = |s: &str| s.rsplit_once('/').map(|(k, _)| k.to_string());
    key(a).is_some() && key(a) == key(b)
}

/// Whether the process named by a creator label may still be working.
pub fn alive(label: &str) -> bool {
    let parts: Vec<&str> = label.split('/').collect();
    let [VERSION, boot, pidns, pid, start, deadline] = parts[..] else {
        // an older label (host/pid/start) or garbage: nothing can be
        // checked, and no current mcc is behind it
        return false;
    };
    if boot == boot_id() && !boot.is_empty() && pidns == pid_namespace() && !pidns.is_empty() {
        let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
            return false;
        };
        return start_time(pid) == Some(start);
    }
    deadline.parse::<u64>().is_ok_and(|d| now() < d)
}

/// How long a create or addnode that may take `timeout` is taken for alive
/// by others: its timeout and the rollback after it.
pub(crate) fn creator_budget(timeout: std::time::Duration) -> u64 {
    timeout.as_secs().saturating_add(300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive() {
        assert!(alive(&current_for(60)));
        assert!(
            alive(&current_for(0)),
            "checked by pid here, not by deadline"
        );
    }

    #[test]
    fn dead_or_garbled_creators() {
        let (boot, ns) = (boot_id(), pid_namespace());
        let far = now() + 3600;
        assert!(
            !alive(&format!("{VERSION}/{boot}/{ns}/4194304/1/{far}")),
            "no such pid"
        );
        let me = std::process::id();
        assert!(
            !alive(&format!("{VERSION}/{boot}/{ns}/{me}/1/{far}")),
            "same pid, other start time"
        );
        assert!(!alive("garbage"));
        assert!(!alive("somehost/1/1"), "labels of older versions");
    }

    #[test]
    fn elsewhere_only_the_deadline_counts() {
        let me = std::process::id();
        let start = start_time(me).unwrap();
        let other_ns = format!("{VERSION}/{}/1/{me}/{start}", boot_id());
        assert!(alive(&format!("{other_ns}/{}", now() + 60)));
        assert!(!alive(&format!("{other_ns}/{}", now() - 1)));
        let other_boot = format!("{VERSION}/another-boot/{}/{me}/{start}", pid_namespace());
        assert!(!alive(&format!("{other_boot}/{}", now() - 1)));
    }

    #[test]
    fn same_process_ignores_the_deadline() {
        let a = current_for(10);
        let b = current_for(1000);
        assert!(same_process(&a, &b));
        assert!(!same_process(&a, "c2/x/y/1/2/3"));
    }
}

//! Several Docker hosts on this machine in one swarm (`scripts/hosts`:
//! each engine in its own network namespace, the namespaces joined by a
//! bridge in a namespace of its own), for the multi-host tests.

#[allow(unused_imports)]
use super::*;

/// A set of engines `NAME-1 … NAME-K` made by `scripts/hosts up`, every one
/// a swarm manager. Removed (`down`: dockerds, containers, namespaces,
/// bridge, mounts, data) when dropped, pass or fail.
pub struct Hosts {
    pub name: String,
    pub count: usize,
    /// The lines `up` printed (`MCC_HOSTS_…=…`).
    pub env: BTreeMap<String, String>,
    down: bool,
}

impl Hosts {
    /// `scripts/hosts up <tag>-<pid> --count K --images …`, the images
    /// copied from the engine this process reaches now. `tag` must be
    /// unique among the tests of a binary. Fails loudly (with the script's
    /// reason) if the engines cannot be made: these tests never skip.
    pub fn up(tag: &str, count: usize, images: &[&str]) -> Hosts {
        let name = format!("{tag}-{}", std::process::id());
        assert!(
            name.len() <= 20,
            "test bug: hosts name '{name}' is over 20 characters"
        );
        let mut hosts = Hosts {
            name,
            count,
            env: BTreeMap::new(),
            down: false,
        };
        // From here on, Drop removes whatever `up` made, even half-way.
        let out = hosts.script(
            "up",
            &["--count", &count.to_string(), "--images", &images.join(",")],
        );
        hosts.env = parse_env(&String::from_utf8_lossy(&out.stdout));
        for i in 1..=count {
            assert!(
                hosts.env.contains_key(&format!("MCC_HOSTS_{i}")),
                "scripts/hosts up printed no MCC_HOSTS_{i}: {:?}",
                hosts.env
            );
        }
        hosts
    }

    /// `unix://…/docker.sock` of host `i` (1-based).
    pub fn docker_host(&self, i: usize) -> &str {
        self.var(&format!("MCC_HOSTS_{i}"))
    }

    /// Host `i`'s address on the bridge.
    pub fn addr(&self, i: usize) -> &str {
        self.var(&format!("MCC_HOSTS_{i}_ADDR"))
    }

    /// Host `i`'s network namespace (under /run/netns).
    pub fn netns(&self, i: usize) -> &str {
        self.var(&format!("MCC_HOSTS_{i}_NETNS"))
    }

    #[track_caller]
    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("scripts/hosts printed no {key}: {:?}", self.env))
    }

    /// `docker -H <host i> ARGS…`: its output, whatever its exit status.
    pub fn docker(&self, i: usize, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(self.docker_host(i))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"))
    }

    /// `docker -H <host i> ARGS…`, which must succeed; its stdout, trimmed.
    #[track_caller]
    pub fn docker_ok(&self, i: usize, args: &[&str]) -> String {
        let out = self.docker(i, args);
        assert!(
            out.status.success(),
            "docker -H {} {args:?} failed: {}{}",
            self.docker_host(i),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Host `i` SIGKILLed whole (dockerd, containerd, every container).
    pub fn kill(&self, i: usize) {
        self.script("kill", &[&i.to_string()]);
    }

    /// Host `i` started again; returns once its swarm node is active.
    pub fn start(&self, i: usize) {
        self.script("start", &[&i.to_string()]);
    }

    /// Host `i`'s port on the bridge down.
    pub fn cut(&self, i: usize) {
        self.script("cut", &[&i.to_string()]);
    }

    /// Host `i`'s port on the bridge up again.
    pub fn mend(&self, i: usize) {
        self.script("mend", &[&i.to_string()]);
    }

    /// `scripts/hosts status`: the `up` lines plus `MCC_HOSTS_I_STATE`,
    /// `_LINK` and `_SWARM` of each host.
    pub fn status(&self) -> BTreeMap<String, String> {
        parse_env(&String::from_utf8_lossy(&self.script("status", &[]).stdout))
    }

    /// `scripts/hosts reach`: this machine's namespace on the hosts'
    /// network (as the machine `mcc serve` runs on would be); its address.
    pub fn reach(&self) -> String {
        let out = self.script("reach", &[]);
        parse_env(&String::from_utf8_lossy(&out.stdout))
            .remove("MCC_HOSTS_REACH_ADDR")
            .expect("scripts/hosts reach printed MCC_HOSTS_REACH_ADDR")
    }

    /// `scripts/hosts down`, which must succeed (Drop then does nothing).
    pub fn down(mut self) {
        self.down = true;
        self.script("down", &[]);
    }

    #[track_caller]
    fn script(&self, verb: &str, args: &[&str]) -> std::process::Output {
        script_ok("hosts", verb, &self.name, args)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        if self.down {
            return;
        }
        script_quietly("hosts", "down", &self.name);
    }
}

/// `KEY=VALUE` lines as a map (other lines ignored).
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

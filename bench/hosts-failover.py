#!/usr/bin/env python3
"""bench/hosts-failover's driver: services back after a whole host is lost,
mcc beside Docker Swarm, on the three engines bench/hosts-failover brought
up (`scripts/hosts`, one swarm) and the cluster of Docker workers it made.

Set-up: an mcc service of one busybox replica per worker (through the
daemon), and on the same swarm a Swarm service of 3 busybox tasks made on
h1, one per node (`--placement-pref spread=node.labels.zone`, the nodes in
zones z1, z2, z3), `--restart-delay 0s` (Swarm's default waits 5 s more).

Each trial: both services whole and spread (one replica per worker, one
task per node); two threads poll, every 50 ms, the daemon's
`GET /api/v1/clusters/C/services/web` and h1's engine `GET /tasks` and
`GET /nodes`; `scripts/hosts kill mccbf 3` runs, and the clock starts when
host 3's dockerd is dead (its pid watched every millisecond: the script
first waits for a lock that other sets of the machine share). Times:

  mcc    gone: the first answer without a replica on host 3's workers;
         back: every index running, once, none on host 3's workers;
  Swarm  down: node 3 no longer `ready` in h1's /nodes;
         back: 3 tasks running on nodes other than node 3.

Between trials: `scripts/hosts start mccbf 3`; wait until mcc has all six
workers healthy and the service 6 instances (the stale exited copies on
host 3's workers removed by the daemon) and Swarm node 3 ready; then put
them back: mcc does not rebalance (a running replica is never moved, and a
scale-down removes the highest indexes wherever they run), so the replicas
that moved are removed on their workers' engines (`docker rm -f` in the
worker) and the daemon starts each index again on the emptiest worker: the
two of host 3; Swarm: `docker service update --force` (a rolling
replacement, each new task placed by the spread preference on the emptiest
zone). Then 5 s of quiet.

CPU: /proc/stat over each window (kill → mcc back, kill → Swarm back), and
the CPU seconds in it of `mcc serve`, of the engines (dockerd, containerd,
shims: the processes in each host's network namespace) and of the
containers of each host (its cgroup `mcc-hosts-mccbf.I`).

Writes BENCH_OUT (Markdown) and bench/.out/hosts-failover-<date>.json.
"""
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "api"))
from mcc_client import sign  # noqa: E402

E = os.environ
MCC, SET, CLUSTER = E["BENCH_MCC"], E["BENCH_SET"], E["BENCH_CLUSTER"]
TRIALS, OUT, COMMAND = int(E["BENCH_TRIALS"]), E["BENCH_OUT"], E["BENCH_COMMAND"]
DAEMON_PID, SERVE_LOG = int(E["BENCH_DAEMON_PID"]), E["BENCH_SERVE_LOG"]
URL, TOKEN, SECRET = E["MCC_ENDPOINT_URL"], E["MCC_ACCESS_TOKEN"], E["MCC_SECRET_KEY"]
HOSTS = os.path.join(ROOT, "scripts", "hosts")
IMAGE = "mcc-test/busybox:latest"
SERVICE = "web"
SWARM_SERVICE = f"{CLUSTER}-swarm"
POLL = 0.05  # 20 Hz
LIMIT = 180  # seconds a trial's convergence may take before it counts as failed
TICK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count()
KILLED = 3
# kill: host 3 SIGKILLed whole (`scripts/hosts kill`), its kernel (the
# namespace) still answering: connections to it are refused or closed;
# silent: host 3's dockerd SIGSTOPped and its link cut (`scripts/hosts
# cut`): nothing refuses, nothing is closed, nothing answers, as a machine
# that lost power or its network looks from the others
FAULT = E.get("BENCH_FAULT", "kill")
STOPPED = []  # a dockerd SIGSTOPped by a silent trial, resumed on exit


def log(msg):
    print(f"bench/hosts-failover: {msg}", file=sys.stderr, flush=True)


def sh(*args, check=True, timeout=600, env=None):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise SystemExit(f"bench/hosts-failover: {' '.join(args)} failed ({r.returncode}):\n"
                         f"{r.stdout.strip()}\n{r.stderr.strip()}")
    return r


def harness():
    env = {}
    with open(f"/run/mcc-hosts/{SET}/env") as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v
    return env


HV = harness()
SOCK = {i: HV[f"MCC_HOSTS_{i}"].removeprefix("unix://") for i in (1, 2, 3)}
NETNS = {i: f"/run/netns/{HV[f'MCC_HOSTS_{i}_NETNS']}" for i in (1, 2, 3)}


# --- the daemon ---------------------------------------------------------------

def api(method, path, body=None, timeout=10):
    data = b"" if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data or None, method=method)
    for k, v in sign(method, path, data, TOKEN, SECRET).items():
        req.add_header(k, v)
    if data:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
    return raw


def api_json(method, path, body=None):
    return json.loads(api(method, path, body) or b"null")


def mcc_view():
    return api_json("GET", f"/api/v1/clusters/{CLUSTER}/services/{SERVICE}")


def mcc_settled(v, n, avoid=()):
    inst = v["instances"]
    running = [i for i in inst if i["state"] == "running"]
    return (len(inst) == n and len(running) == n
            and len({i["replica"] for i in running}) == n
            and all(i["worker"] not in avoid for i in running))


def mcc_spread(v, workers):
    return mcc_settled(v, len(workers)) and sorted(i["worker"] for i in v["instances"]) == sorted(workers)


def healthy_workers():
    st = api_json("GET", f"/api/v1/clusters/{CLUSTER}/state")
    return {w["worker"] for w in st["cluster.workers"] if w["healthy"]}


def events_since(seq):
    raw = api("GET", f"/api/v1/events?since={seq}&follow=false", timeout=30)
    return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]


def last_seq():
    ev = events_since(0)
    return max([e["seq"] for e in ev] or [0])


def local_mcc(*args, timeout=600):
    env = {k: v for k, v in E.items() if not re.match(r"^M?CC_(ENDPOINT_URL|ACCESS_TOKEN|SECRET_KEY)$", k)}
    env["MCC_HOSTS_FILE"] = E["BENCH_HOSTS_FILE"]
    return sh(MCC, *args, env=env, timeout=timeout)


# --- the engines --------------------------------------------------------------

class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("engine", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def engine(i, path, timeout=5):
    c = UnixHTTP(SOCK[i], timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"host {i} GET {path}: {r.status} {body[:200]!r}")
        return json.loads(body)
    finally:
        c.close()


def docker(i, *args, check=True, timeout=300):
    return sh("docker", "-H", f"unix://{SOCK[i]}", *args, check=check, timeout=timeout)


def swarm_nodes(i=1):
    """{hostname: (id, state, leader)} as host i's manager sees them."""
    out = {}
    for n in engine(i, "/nodes"):
        out[n["Description"]["Hostname"]] = (
            n["ID"], n["Status"]["State"], bool(n.get("ManagerStatus", {}).get("Leader")))
    return out


def swarm_tasks(i=1):
    f = urllib.parse.quote(json.dumps({"service": [SWARM_SERVICE], "desired-state": ["running"]}))
    return engine(i, f"/tasks?filters={f}")


def swarm_running(tasks, avoid=None):
    return [t for t in tasks if t["Status"]["State"] == "running" and t.get("NodeID") != avoid]


def swarm_spread(tasks):
    run = swarm_running(tasks)
    return len(tasks) == 3 and len(run) == 3 and len({t["NodeID"] for t in run}) == 3


# --- CPU ----------------------------------------------------------------------

def proc_stat():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle, iowait
    return sum(v[:8]), idle  # user … steal


def netns_cpu():
    want = {}
    for i, path in NETNS.items():
        try:
            st = os.stat(path)
            want[(st.st_dev, st.st_ino)] = i
        except OSError:
            pass
    out = {i: 0.0 for i in NETNS}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{pid}/ns/net")
            i = want.get((st.st_dev, st.st_ino))
            if i is None:
                continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[i] += sum(int(x) for x in fields[11:15]) / TICK
    return out


def cgroup_cpu():
    out = {}
    for i in NETNS:
        try:
            with open(f"/sys/fs/cgroup/cpuacct/mcc-hosts-{SET}.{i}/cpuacct.usage") as f:
                out[i] = int(f.read()) / 1e9
        except OSError:
            out[i] = None
    return out


def pid_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:13]) / TICK
    except OSError:
        return 0.0


def cpu_snapshot():
    return {"t": time.perf_counter(), "stat": proc_stat(), "netns": netns_cpu(),
            "cgroup": cgroup_cpu(), "daemon": pid_cpu(DAEMON_PID)}


def cpu_window(a, b):
    """Machine busy (share of all cores) and CPU seconds of what this bench runs."""
    total = b["stat"][0] - a["stat"][0]
    idle = b["stat"][1] - a["stat"][1]
    busy = (total - idle) / total if total else 0.0
    wall = b["t"] - a["t"]
    # host 3's engine processes die in the window: their CPU is left out
    engines = sum(b["netns"][i] - a["netns"][i] for i in (1, 2))
    containers = sum((b["cgroup"][i] or 0) - (a["cgroup"][i] or 0) for i in (1, 2, 3))
    daemon = b["daemon"] - a["daemon"]
    machine = (total - idle) / TICK
    return {"wall": wall, "busy": busy, "machine_cpu_s": machine, "engines_s": engines,
            "containers_s": containers, "daemon_s": daemon,
            "rest_s": machine - engines - containers - daemon}


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# --- waiting ------------------------------------------------------------------

def wait(cond, what, limit=LIMIT, every=0.2):
    t = time.perf_counter()
    last = None
    while True:
        try:
            ok, last = cond()
        except (OSError, RuntimeError, ValueError, http.client.HTTPException) as e:
            ok, last = False, f"{type(e).__name__}: {e}"
        if ok:
            return time.perf_counter() - t
        if time.perf_counter() - t > limit:
            raise RuntimeError(f"{what}: not within {limit} s; last seen: {str(last)[:400]}")
        time.sleep(every)


def dockerd_dead(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


class Poller(threading.Thread):
    """Asks `probe` every POLL seconds; `probe` returns (gone, back, detail).
    Keeps the first time each was true, the polls made and the longest gap."""

    def __init__(self, probe):
        super().__init__(daemon=True)
        self.probe = probe
        self.gone = self.back = None
        self.polls = self.errors = 0
        self.max_gap = 0.0
        self.t0 = None
        self.stop = threading.Event()
        self.at_back = None
        self.last = None

    def run(self):
        prev = None
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                gone, back, self.last = self.probe()
            except (OSError, RuntimeError, ValueError, http.client.HTTPException) as e:
                gone = back = False
                self.errors += 1
                self.last = f"{type(e).__name__}: {e}"
            now = time.perf_counter()
            self.polls += 1
            if self.t0 is not None and prev is not None and prev >= self.t0:
                self.max_gap = max(self.max_gap, start - prev)
            prev = start
            # an answer to a question asked before the kill says nothing
            if self.t0 is not None and start >= self.t0:
                if gone and self.gone is None:
                    self.gone = now
                if back and self.back is None:
                    self.back = now
                    self.at_back = cpu_snapshot()
                    return
            self.stop.wait(max(0.0, POLL - (time.perf_counter() - start)))


# --- set-up -------------------------------------------------------------------

def placement():
    out = json.loads(local_mcc("inspect", CLUSTER, "--output", "json", timeout=120).stdout)
    by_host = {}
    for n in out["nodes"]:
        if n["name"] == "frontend":
            continue
        by_host.setdefault(n.get("host"), []).append(n["name"])
    if sorted(by_host) != ["h1", "h2", "h3"] or any(len(w) != 2 for w in by_host.values()):
        raise SystemExit(f"bench/hosts-failover: workers are not two per host: {by_host}")
    return {h: sorted(w) for h, w in by_host.items()}


def set_up(workers):
    log(f"mcc service create {SERVICE}: {len(workers)} replicas, one per worker")
    env = dict(E)
    sh(MCC, "service", "create", SERVICE, "--cluster", CLUSTER, "--image", IMAGE,
       "--replicas", str(len(workers)), "--", "sleep", "86400", env=env, timeout=300)
    wait(lambda: (lambda v: (mcc_spread(v, workers), v))(mcc_view()), "mcc service one per worker")
    log(f"docker service create {SWARM_SERVICE} on h1: 3 tasks, one per node")
    docker(1, "service", "create", "--detach", "--name", SWARM_SERVICE, "--replicas", "3",
           "--placement-pref", "spread=node.labels.zone", "--restart-delay", "0s",
           # busybox sleep as PID 1 ignores SIGTERM: without this, each task
           # replaced by `update --force` takes 10 s to stop
           "--stop-grace-period", "1s",
           "--no-resolve-image", IMAGE, "sleep", "86400")
    wait(lambda: (lambda t: (swarm_spread(t), t))(swarm_tasks()), "Swarm service one task per node")


# --- a trial ------------------------------------------------------------------

def worker_host(by_host):
    return {w: int(h[1:]) for h, ws in by_host.items() for w in ws}


def trial(n, by_host, workers):
    dead_workers = set(by_host[f"h{KILLED}"])
    v = mcc_view()
    if not mcc_spread(v, workers):
        raise RuntimeError(f"trial {n}: mcc service not one per worker before the kill: {v}")
    moved = sorted(i["replica"] for i in v["instances"] if i["worker"] in dead_workers)
    nodes = swarm_nodes()
    dead_node = nodes[f"{SET}-{KILLED}"][0]
    leader = next(h for h, x in nodes.items() if x[2])
    tasks = swarm_tasks()
    if not swarm_spread(tasks):
        raise RuntimeError(f"trial {n}: Swarm service not one task per node before the kill")
    swarm_moved = len([t for t in tasks if t["NodeID"] == dead_node])
    seq = last_seq()
    with open(SERVE_LOG, "rb") as f:
        log_at = len(f.read())

    def mcc_probe():
        v = mcc_view()
        gone = not any(i["worker"] in dead_workers for i in v["instances"])
        return gone, mcc_settled(v, len(workers), dead_workers), v

    def swarm_probe():
        nodes = {x[0]: x[1] for x in swarm_nodes().values()}
        tasks = swarm_tasks()
        back = len(swarm_running(tasks, avoid=dead_node)) == 3
        return nodes.get(dead_node) != "ready", back, tasks

    pm, ps = Poller(mcc_probe), Poller(swarm_probe)
    pm.start()
    ps.start()
    time.sleep(0.3)
    load = loadavg()
    with open(f"/run/mcc-hosts/{SET}/{KILLED}/docker.pid") as f:
        pid = int(f.read().strip())
    t_cmd = time.perf_counter()
    if FAULT == "kill":
        t0, t0_wall, t_killed, before = kill_host(pid, pm, ps)
    else:
        STOPPED.append(pid)
        os.kill(pid, signal.SIGSTOP)
        sh(HOSTS, "cut", SET, str(KILLED), timeout=120)
        t0 = t_killed = time.perf_counter()
        t0_wall = time.time()
        pm.t0 = ps.t0 = t0
        before = cpu_snapshot()
    pm.join(LIMIT)
    ps.join(max(1.0, LIMIT - (time.perf_counter() - t0)))
    pm.stop.set()
    ps.stop.set()
    r = {
        "trial": n, "load1": load, "moved": moved, "swarm_moved": swarm_moved, "leader": leader,
        "lock_wait": t0 - t_cmd, "kill_cmd": t_killed - t_cmd,
        "mcc_gone": None if pm.gone is None else pm.gone - t0,
        "mcc_back": None if pm.back is None else pm.back - t0,
        "swarm_down": None if ps.gone is None else ps.gone - t0,
        "swarm_back": None if ps.back is None else ps.back - t0,
        "mcc_polls": pm.polls, "mcc_max_gap": pm.max_gap, "mcc_errors": pm.errors,
        "swarm_polls": ps.polls, "swarm_max_gap": ps.max_gap, "swarm_errors": ps.errors,
        "cpu_mcc": cpu_window(before, pm.at_back) if pm.at_back else None,
        "cpu_swarm": cpu_window(before, ps.at_back) if ps.at_back else None,
    }
    if pm.back is None:
        r["mcc_last"] = pm.last
    if ps.back is None:
        r["swarm_last"] = ps.last
    else:
        r["swarm_final"] = [(t["NodeID"] == dead_node, t["Status"]["State"]) for t in ps.last or []]
    r["events"] = [e for e in events_since(seq) if e.get("cluster") == CLUSTER]
    with open(SERVE_LOG, "rb") as f:
        r["serve_log"] = f.read()[log_at:].decode(errors="replace").splitlines()[-60:]
    if pm.back is not None:
        r["mcc_final"] = {i["replica"]: i["worker"] for i in pm.last["instances"]}
    r.update(stages(r["serve_log"], t0_wall))
    return r


def kill_host(pid, pm, ps):
    """`scripts/hosts kill` of host 3; the clock starts when its dockerd is
    dead (the script may first wait for the lock of every set)."""
    kp = subprocess.Popen([HOSTS, "kill", SET, str(KILLED)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    while not dockerd_dead(pid):
        if kp.poll() is not None and kp.returncode != 0:
            raise RuntimeError(f"scripts/hosts kill failed: {kp.stderr.read()}")
        time.sleep(0.001)
    t0 = time.perf_counter()
    t0_wall = time.time()
    pm.t0 = ps.t0 = t0
    before = cpu_snapshot()
    _, kerr = kp.communicate(timeout=120)
    if kp.returncode != 0:
        raise RuntimeError(f"scripts/hosts kill {SET} {KILLED} failed: {kerr}")
    return t0, t0_wall, time.perf_counter(), before


def resume():
    """A silent trial's host 3 answering again: its dockerd resumed, its link up."""
    while STOPPED:
        try:
            os.kill(STOPPED.pop(), signal.SIGCONT)
        except ProcessLookupError:
            pass
    sh(HOSTS, "mend", SET, str(KILLED), check=False, timeout=120)


def stages(lines, t0_wall):
    """When the daemon's log says it saw host 3's workers go (their engines'
    event streams ending), marked them down (a pass), and had their
    replicas started elsewhere; seconds after the kill."""
    def at(line):
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
        if not m:
            return None
        t = datetime.datetime.strptime(m.group(1)[:26], "%Y-%m-%dT%H:%M:%S.%f")
        return t.replace(tzinfo=datetime.timezone.utc).timestamp() - t0_wall

    def first(pat, last=False):
        ts = [at(x) for x in lines if re.search(pat, x)]
        ts = [t for t in ts if t is not None]
        return (max(ts) if last else min(ts)) if ts else None

    return {"log_lost": first(r"engine was lost|event stream ended"),
            "log_down": first(r"is down: relocating"),
            "log_started": first(r"relocated from|started on", last=True)}


def restore(by_host, workers, moved):
    """Host 3 started again; both whole, then put back one per worker / node."""
    t = time.perf_counter()
    if FAULT == "kill":
        sh(HOSTS, "start", SET, str(KILLED), timeout=300)
    else:
        resume()
    out = {"start": time.perf_counter() - t}

    def mcc_whole():
        v = mcc_view()
        h = healthy_workers()
        return h == set(workers) and mcc_settled(v, len(workers)), (h, v)

    def swarm_whole():
        nodes = swarm_nodes()
        tasks = swarm_tasks()
        ok = all(x[1] == "ready" for x in nodes.values()) and len(swarm_running(tasks)) == 3
        return ok and len(tasks) == 3, (nodes, tasks)

    out["mcc_whole"] = out["start"] + wait(mcc_whole, "mcc: every worker healthy again")
    out["swarm_whole"] = out["start"] + wait(swarm_whole, "Swarm: node 3 ready again")
    # mcc: the replicas that moved are removed where they run now; the
    # daemon starts each again on the emptiest worker (host 3's)
    t = time.perf_counter()
    where = worker_host(by_host)
    instances = mcc_view()["instances"]
    count = {}
    for inst in instances:
        count[inst["worker"]] = count.get(inst["worker"], 0) + 1
    for inst in instances:
        if inst["replica"] in moved and count[inst["worker"]] > 1:
            name = f"{CLUSTER}-{inst['worker']}"
            docker(where[inst["worker"]], "exec", name, "sh", "-c",
                   'DOCKER_HOST=unix:///var/run/docker.sock DOCKER_TLS_VERIFY= docker rm -f "$0" >/dev/null',
                   inst["container"])
    wait(lambda: (lambda v: (mcc_spread(v, workers), v))(mcc_view()), "mcc: one replica per worker again")
    out["mcc_rebalance"] = time.perf_counter() - t
    # Swarm: a forced update replaces the tasks one by one, each placed on
    # the emptiest zone; it once ended with two tasks on one node (after a
    # silent trial), so it is forced again then, up to 3 times in all
    t = time.perf_counter()
    out["swarm_updates"] = 0
    while True:
        docker(1, "service", "update", "--force", "--detach", SWARM_SERVICE)
        out["swarm_updates"] += 1
        try:
            wait(lambda: (lambda x: (swarm_spread(x), x))(swarm_tasks()), "Swarm: one task per node again",
                 limit=60)
            break
        except RuntimeError:
            if out["swarm_updates"] == 3:
                raise
    out["swarm_rebalance"] = time.perf_counter() - t
    time.sleep(5)
    return out


# --- the report ---------------------------------------------------------------

def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def fs(x, nd=2):
    return "–" if x is None else f"{x:.{nd}f}"


def describe(path):
    st = os.stat(path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    built = datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc)
    return f"built {built:%Y-%m-%dT%H:%MZ}, sha256 {digest}"


def report(started, minutes, load_start, load_end, by_host, runs, restores, failures):
    done = [r for r in runs if r["mcc_back"] is not None and r["swarm_back"] is not None]
    col = lambda k: [r[k] for r in runs if r[k] is not None]
    docker_v = sh("docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})",
                  check=False).stdout.strip()
    mem = ""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1048576:.0f} GiB"
    rev = sh("git", "-C", ROOT, "rev-parse", "--short", "HEAD", check=False).stdout.strip() or "?"
    dirty = len(sh("git", "-C", ROOT, "status", "--porcelain", "--", "crates", "Cargo.lock",
                   check=False).stdout.splitlines())
    if dirty:
        rev += f", with {dirty} file(s) under crates/ changed and not committed"
    L = [
        "# bench/hosts-failover results: services back after a whole host is lost, mcc beside Swarm "
        "(issue 17, item 7)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; the whole run took {minutes:.1f} min",
        f"- machine: nproc {NCPU}, memory {mem}, Docker {docker_v}, kernel {platform.release()}; "
        f"three engines of this machine in one swarm, all managers (`scripts/hosts up {SET} --count 3 "
        "--zones z1,z2,z3`), `mcc serve` in the machine's own namespace, on the hosts' network "
        "(`scripts/hosts reach`)",
        f"- load at start: `{load_start}`",
        f"- load at end: `{load_end}`",
        f"- mcc: `{MCC}`, {describe(MCC)}; the repository was at {rev}",
        f"- command: `{COMMAND}`",
        f"- mcc: cluster of 6 Docker workers over h1,h2,h3 "
        f"({'; '.join(f'{h}: ' + ', '.join(ws) for h, ws in sorted(by_host.items()))}), a busybox "
        "service of 6 replicas, one per worker; Swarm: a service of 3 busybox tasks made on h1, "
        "one per node (`--placement-pref spread=node.labels.zone`), `--restart-delay 0s`",
        "",
    ]
    if not done:
        L += ["**No trial completed.**", ""]
    else:
        mb, sb = col("mcc_back"), col("swarm_back")
        mg, sd = col("mcc_gone"), col("swarm_down")
        row = lambda label, xs, extra="": (
            f"| {label} | {len(xs)} | **{pct(xs, 50):.2f} s** | {pct(xs, 99):.2f} s | {max(xs):.2f} s "
            f"| {min(xs):.2f} s |{extra}")
        L += [
            (f"## Host 3 killed whole, {len(runs)} trials (clock from its dockerd's death)"
             if FAULT == "kill" else
             f"## Host 3 gone silent (dockerd SIGSTOPped, link cut), {len(runs)} trials "
             "(clock from the cut)"),
            "",
            "| | trials | p50 | p99 | max | min |",
            "|---|---:|---:|---:|---:|---:|",
            row("mcc: every replica running again on h1/h2 (daemon API)", mb),
            row("mcc: host 3's replicas gone from the daemon's view", mg),
            row("Swarm: 3 tasks running again on h1/h2 (h1's /tasks)", sb),
            row("Swarm: node 3 no longer `ready` (h1's /nodes)", sd),
            "",
            f"p99 of {len(mb)} trials: interpolated between the two slowest (as bench/failover). "
            f"Polls every {POLL * 1000:.0f} ms: mcc's longest gap between two polls after the loss "
            f"{max(col('mcc_max_gap')) * 1000:.0f} ms, Swarm's {max(col('swarm_max_gap')) * 1000:.0f} ms"
            + (f"; `scripts/hosts kill` waited up to {max(col('lock_wait')):.2f} s for its lock before the "
             "kill (not in the times)." if FAULT == "kill" else "."),
            "",
            f"- target, services back after a host loss with p50 under 2 s: "
            f"**{'met' if pct(mb, 50) < 2 else 'NOT met'}** (mcc p50 {pct(mb, 50):.2f} s, "
            f"Swarm {pct(sb, 50):.2f} s)",
            "",
        ]
    L += [
        "## Each trial",
        "",
        "| trial | load1 | mcc replicas moved | mcc gone | mcc back | Swarm node down | Swarm back | "
        "busy, kill→mcc back | CPU s in it: mcc serve / engines / containers / other | "
        "busy, kill→Swarm back | host 3 up again | mcc / Swarm whole | put back: mcc / Swarm |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---|---|",
    ]
    for i, r in enumerate(runs):
        x = restores[i] if i < len(restores) else None
        cm, cs = r["cpu_mcc"], r["cpu_swarm"]
        L.append(
            f"| {r['trial']} | {r['load1']:.1f} | {', '.join(map(str, r['moved']))} | {fs(r['mcc_gone'])} | "
            f"{fs(r['mcc_back'])} | {fs(r['swarm_down'])} | {fs(r['swarm_back'])} | "
            f"{fs(100 * cm['busy'], 0) + ' %' if cm else '–'} | "
            + (f"{cm['daemon_s']:.2f} / {cm['engines_s']:.2f} / {cm['containers_s']:.2f} / "
               f"{cm['rest_s']:.2f}" if cm else "–")
            + f" | {fs(100 * cs['busy'], 0) + ' %' if cs else '–'} | "
            + (f"{x['start']:.1f} s | {x['mcc_whole']:.1f} / {x['swarm_whole']:.1f} s | "
               f"{x['mcc_rebalance']:.1f} / {x['swarm_rebalance']:.1f} s"
               f"{' (' + str(x['swarm_updates']) + ' forced updates)' if x.get('swarm_updates', 1) > 1 else ''} |"
               if x else "– | – | – |"))
    L += [
        "",
        f"Times in seconds after host 3's {'dockerd died' if FAULT == 'kill' else 'link was cut'}. *busy*: the share of the machine's "
        f"{NCPU} cores not idle (/proc/stat) in the window; CPU s: `mcc serve`, the engines h1 and h2 "
        "(dockerd, containerd, shims: the processes of their network namespaces), the containers "
        "of the three hosts (cgroups `mcc-hosts-…`: the workers, their engines), and the rest of the "
        "machine (other work, the kernel's). *host 3 up again*: "
        + ("`scripts/hosts start` until its swarm node is active" if FAULT == "kill" else
           "SIGCONT to its dockerd and `scripts/hosts mend`")
        + "; *whole*: from that start until mcc's six workers are healthy with the "
        "6 replicas (the stale copies on host 3's workers removed), and until Swarm's node 3 is "
        "`ready` with 3 tasks; *put back*: until one replica per worker / one task per node again.",
        "",
    ]
    if done:
        L += explain(runs, restores)
    if failures:
        L += ["## Failures", ""] + [f"- {f}" for f in failures] + [""]
    return "\n".join(L) + "\n"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


KILL_TEXT = (
    "mcc: host 3's dockerd is SIGKILLed first, then the rest of the host (containerd, the "
    "shims, the workers' own engines) a moment later; the kernel of its network namespace "
    "lives on and closes their sockets, so the event streams the daemon follows from host 3's "
    "workers' engines end at once; that wakes a pass, which finds host 3's engine refusing "
    "(a unix socket here) and its workers' engines unreachable, marks them down, and creates "
    "and starts the moved replicas on the emptiest workers of h1 and h2 (their image is there "
    "already); the API answers from what the next pass lists. This is the best case of "
    "detection: a host whose kernel still answers. A machine that lost power or its network "
    "closes and refuses nothing: see `bench/hosts-failover --fault silent` "
    "(bench/results-hosts-failover-silent.md).")
SILENT_TEXT = (
    "mcc: nothing tells the daemon that host 3 is gone: no event stream ends (the TCP "
    "connections to host 3's workers' engines just stop carrying anything), and host 3's "
    "engine (its dockerd stopped) accepts a connection and never answers. The next periodic "
    "pass (every 5 s) asks every host's engine for the cluster's containers, and waits for "
    "host 3's answer: the request to a host's engine times out after 120 s (`WORK_SECS` in "
    "crates/mcc-core/src/provider/docker/multi.rs), and only then is host 3 unreachable and "
    "its workers down; the workers' engines' own 2 s timeout (`ENGINE_TIMEOUT`) never gets a "
    "say, as the pass is stuck before it. After that, each pass reaches for host 3's engine "
    "anew and waits out its 3 s connect-and-ping (`PROBE_SECS`), so the moved replicas show "
    "as running one slow pass after they were started. The daemon's log lines of each trial "
    "are in the raw figures.")


def split(runs):
    """mcc's times in the trials the machine was left to this bench, and in the others."""
    quiet, busy = [], []
    for r in runs:
        c = r["cpu_mcc"]
        if c and r["mcc_back"] is not None:
            # the rest (other work, this driver's polling, the kernel's)
            # under half a core while mcc failed over
            (quiet if c["rest_s"] / c["wall"] < 0.5 else busy).append(r["mcc_back"])
    if not quiet or not busy:
        return (f"Every trial ran with {'little' if quiet else 'much'} other work on the machine: "
                "no split of mcc's times by the machine's load.")
    return (f"In the {len(quiet)} trials where the rest of the machine (other work, this driver's "
            "polling, the kernel's) took under half a core while mcc "
            f"failed over, mcc was back in {fs(med(quiet))} s (median; {fs(min(quiet))} to "
            f"{fs(max(quiet))}); in the {len(busy)} others, in {fs(med(busy))} s ({fs(min(busy))} to "
            f"{fs(max(busy))}): the same failover, with the cores shared with other work.")


def explain(runs, restores):
    """Where the time goes, and what the shared cores do to it."""
    m = lambda k: med([r.get(k) for r in runs])
    cm = [r["cpu_mcc"] for r in runs if r["cpu_mcc"]]
    cs = [r["cpu_swarm"] for r in runs if r["cpu_swarm"]]
    ours = lambda c: c["daemon_s"] + c["engines_s"] + c["containers_s"]
    busy_m, busy_s = med([c["busy"] for c in cm]), med([c["busy"] for c in cs])
    rest_share = med([c["rest_s"] / c["machine_cpu_s"] for c in cm if c["machine_cpu_s"]])
    ours_rate = med([ours(c) / c["wall"] for c in cm if c["wall"]])
    L = [
        "## Where the time goes",
        "",
        "| step (medians, s after the kill) | mcc | Swarm |",
        "|---|---:|---:|",
        f"| the loss seen | {fs(m('log_lost'))} (the daemon's log: a worker's engine event stream "
        f"ended) | {fs(m('swarm_down'))} (node 3 no longer `ready`) |",
        f"| host 3's workers marked down by a pass | {fs(m('log_down'))} | |",
        f"| the moved replicas / the task started elsewhere | {fs(m('log_started'))} (the log: "
        "relocated, last of the moved) | |",
        f"| the API shows host 3's replicas gone | {fs(m('mcc_gone'))} | |",
        f"| the API shows every replica running again | **{fs(m('mcc_back'))}** | **{fs(m('swarm_back'))}** |",
        "",
        (KILL_TEXT if FAULT == "kill" else SILENT_TEXT),
        "",
        "Swarm: the managers on h1 and h2 learn of node 3's loss from its missing heartbeats "
        "(it is marked down some 10 to 15 s after its last one, whatever the cause: the same "
        "for a silent machine), then the orchestrator starts a replacement task on a node left "
        "(`--restart-delay 0s` here; the default 5 s would come on top).",
        "",
        "## What two shared cores do to these figures",
        "",
        f"The three \"hosts\" are three dockerds in network namespaces of one machine with {NCPU} "
        "cores, the six workers run a dockerd each inside their containers, and the daemon, the "
        "replicas and whatever else the machine runs take their CPU from the same cores. While "
        f"mcc failed over, the machine was busy {fs(100 * busy_m, 0)} % of the time (median; "
        f"1-minute load {fs(m('load1'), 1)} at the kills), {fs(100 * rest_share, 0)} % of it "
        "other work than this bench's (other processes of the machine, the kernel's); this "
        f"bench's own processes (mcc serve, the engines of h1 and h2, the hosts' containers) "
        f"used {fs(ours_rate, 2)} CPU s per second of it. Between the kill and Swarm's recovery the "
        f"machine was {fs(100 * busy_s, 0)} % busy.",
        "",
        split(runs),
        "",
        "mcc's path is work (a pass asks 3 engines and 6 workers' engines over TLS, then two "
        "replicas are created and started: runc, a network namespace and a veth each, on a "
        "worker's engine inside a container): on a busy machine every step waits for a core, "
        "so its figure here is an upper bound of what three machines with cores of their own "
        "would show, for a host whose loss is seen at once. Swarm's path is a timer (the "
        "heartbeats) followed by one task start: the shared cores add little to it, and three "
        "machines would not make it shorter. On this machine nothing crosses a wire: the "
        "daemon's requests to the workers' engines cross veths and a bridge of the same kernel.",
        "",
    ]
    return L


def main():
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    load_start = sh("uptime", check=False).stdout.strip()
    by_host = placement()
    workers = sorted(w for ws in by_host.values() for w in ws)
    log(f"workers per host: {by_host}")
    set_up(workers)
    runs, restores, failures = [], [], []
    for n in range(1, TRIALS + 1):
        try:
            r = trial(n, by_host, workers)
        except RuntimeError as e:
            failures.append(str(e))
            log(f"trial {n}: {e}")
            break
        runs.append(r)
        log(f"trial {n}: mcc back {fs(r['mcc_back'])} s (gone {fs(r['mcc_gone'])} s, replicas "
            f"{r['moved']}), Swarm back {fs(r['swarm_back'])} s (node down {fs(r['swarm_down'])} s); "
            f"machine busy {fs(100 * r['cpu_mcc']['busy'], 0) if r['cpu_mcc'] else '–'} % "
            f"while mcc failed over")
        if r["mcc_back"] is None or r["swarm_back"] is None:
            failures.append(f"trial {n}: mcc back {r['mcc_back']}, Swarm back {r['swarm_back']}: "
                            f"{str(r.get('mcc_last') or r.get('swarm_last'))[:1500]}")
        try:
            restores.append(restore(by_host, workers, r["moved"]))
        except RuntimeError as e:
            failures.append(f"after trial {n}: {e}")
            log(failures[-1])
            break
        x = restores[-1]
        log(f"  host 3 started in {x['start']:.1f} s; mcc whole {x['mcc_whole']:.1f} s, Swarm whole "
            f"{x['swarm_whole']:.1f} s; put back: mcc {x['mcc_rebalance']:.1f} s, Swarm "
            f"{x['swarm_rebalance']:.1f} s")
    load_end = sh("uptime", check=False).stdout.strip()
    raw = {"started": started.isoformat(), "by_host": by_host, "runs": runs, "restores": restores,
           "failures": failures, "load_start": load_start, "load_end": load_end}
    os.makedirs(os.path.join(ROOT, "bench", ".out"), exist_ok=True)
    raw_path = os.path.join(ROOT, "bench", ".out", f"hosts-failover-{started:%Y%m%dT%H%M%S}.json")
    with open(raw_path, "w") as f:
        json.dump(raw, f, indent=1)
    text = report(started, (time.monotonic() - t_start) / 60, load_start, load_end, by_host,
                  runs, restores, failures)
    with open(os.path.join(ROOT, OUT), "w") as f:
        f.write(text)
    print(text)
    log(f"raw figures in {raw_path}")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    # bench/hosts-failover stops this driver with SIGTERM (on Ctrl-C too)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    finally:
        if STOPPED:
            resume()

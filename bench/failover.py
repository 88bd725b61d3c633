#!/usr/bin/env python3
"""bench/failover's driver: failover latency of mcc services against Docker
Swarm's own task restart, on the same machine, in one run.

mcc: a cluster of 4 Docker workers, a service of 8 replicas; a worker that
holds replicas is killed (`docker kill` of its container) and the clock runs
until every replica runs again on the others (the daemon's API, polled every
10 ms). The worker is started again between trials.

Swarm: a single-node swarm inside one more Docker worker (its own engine, so
the host's engine never enters swarm mode), a service of 1 replica with
--restart-delay 0s; its task's container is killed and the clock runs until
a new task container runs (timed inside the node, polled every 10 ms).

Also: `mcc service create` of 10 replicas to all running, and the daemon's
RSS with 100 services defined (1 replica each).

Usage: failover.py MCC TRIALS   (with MCC_ENDPOINT_URL/… of a running daemon
and the clusters made by bench/failover)
"""
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "api"))
from mcc_client import sign  # noqa: E402

MCC, TRIALS = sys.argv[1], int(sys.argv[2])
CLUSTER, SWARM = os.environ["BENCH_CLUSTER"], os.environ["BENCH_SWARM"]
IMAGE = "mcc-test/busybox:latest"
URL = os.environ["MCC_ENDPOINT_URL"]
TOKEN, SECRET = os.environ["MCC_ACCESS_TOKEN"], os.environ["MCC_SECRET_KEY"]
WORKERS = ["node01", "node02", "node03", "node04"]


def api(method, path, body=None):
    data = b"" if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data or None, method=method)
    for k, v in sign(method, path, data, TOKEN, SECRET).items():
        req.add_header(k, v)
    if data:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def docker(*args):
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


def service(name):
    return api("GET", f"/api/v1/clusters/{CLUSTER}/services/{name}")


def settled(name, n, dead=None):
    v = service(name)
    running = [i for i in v["instances"] if i["state"] == "running"]
    return (len(running) == n and len(v["instances"]) == n
            and len({i["replica"] for i in running}) == n
            and all(i["worker"] != dead for i in running)), v


def wait(cond, limit=120):
    t = time.perf_counter()
    while True:
        ok, v = cond()
        if ok:
            return v
        if time.perf_counter() - t > limit:
            raise SystemExit(f"bench/failover: no convergence in {limit}s: {v}")
        time.sleep(0.01)


def healthy(w):
    state = api("GET", f"/api/v1/clusters/{CLUSTER}/state")
    return any(x["worker"] == w and x["healthy"] for x in state["cluster.workers"]), state


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def mcc_trials():
    subprocess.run([MCC, "service", "create", "web", "--cluster", CLUSTER, "--image", IMAGE,
                    "--replicas", "8", "--", "sleep", "86400"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait(lambda: settled("web", 8))
    times, moved = [], []
    for t in range(TRIALS):
        v = service("web")
        on = {}
        for i in v["instances"]:
            on.setdefault(i["worker"], []).append(i["replica"])
        victim = max(WORKERS, key=lambda w: (len(on.get(w, [])), -((WORKERS.index(w) - t) % 4)))
        t0 = time.perf_counter()
        docker("kill", f"{CLUSTER}-{victim}")
        wait(lambda: settled("web", 8, dead=victim))
        times.append(time.perf_counter() - t0)
        moved.append(len(on.get(victim, [])))
        docker("start", f"{CLUSTER}-{victim}")
        wait(lambda: healthy(victim))
        print(f"bench/failover: mcc trial {t + 1}: {victim} killed, {moved[-1]} replicas "
              f"running elsewhere after {times[-1] * 1000:.0f} ms", file=sys.stderr)
    subprocess.run([MCC, "service", "delete", "web", "--cluster", CLUSTER], check=True,
                   stdout=subprocess.DEVNULL)
    return times, moved


SWARM_TRIAL = r'''
set -e
export DOCKER_HOST=unix:///var/run/docker.sock DOCKER_TLS_VERIFY=
f=label=com.docker.swarm.service.name=bench
old=$(docker ps -q --filter "$f" --filter status=running)
[ -n "$old" ] || { echo "no running task" >&2; exit 1; }
t0=$(date +%s%N)
docker kill "$old" >/dev/null
while :; do
  new=$(docker ps -q --filter "$f" --filter status=running)
  if [ -n "$new" ] && [ "$new" != "$old" ]; then break; fi
  sleep 0.01
done
t1=$(date +%s%N)
echo $(( (t1 - t0) / 1000 ))
'''


def swarm_trials():
    node = f"{SWARM}-node01"
    env = ["-e", "DOCKER_HOST=unix:///var/run/docker.sock", "-e", "DOCKER_TLS_VERIFY="]
    ip = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                node).strip()
    subprocess.run(f"docker save {IMAGE} | docker exec -i -e DOCKER_HOST=unix:///var/run/docker.sock "
                   f"-e DOCKER_TLS_VERIFY= {node} docker load", shell=True, check=True,
                   stdout=subprocess.DEVNULL)
    docker("exec", *env, node, "docker", "swarm", "init", "--advertise-addr", ip)
    docker("exec", *env, node, "docker", "service", "create", "--detach", "--name", "bench",
           "--replicas", "1", "--restart-delay", "0s", "--restart-max-attempts", "0",
           "--endpoint-mode", "dnsrr", "--no-resolve-image", IMAGE, "sleep", "86400")
    for _ in range(600):
        out = docker("exec", *env, node, "docker", "ps", "-q", "--filter",
                     "label=com.docker.swarm.service.name=bench", "--filter", "status=running")
        if out.strip():
            break
        time.sleep(0.1)
    times = []
    for t in range(TRIALS):
        us = int(docker("exec", node, "sh", "-c", SWARM_TRIAL).strip())
        times.append(us / 1e6)
        print(f"bench/failover: swarm trial {t + 1}: task killed, a new one running after "
              f"{us / 1000:.0f} ms", file=sys.stderr)
        time.sleep(0.5)
    return times


def create_10():
    t = time.perf_counter()
    subprocess.run([MCC, "service", "create", "ten", "--cluster", CLUSTER, "--image", IMAGE,
                    "--replicas", "10", "--", "sleep", "86400"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = time.perf_counter() - t
    ok, _ = settled("ten", 10)
    assert ok
    subprocess.run([MCC, "service", "delete", "ten", "--cluster", CLUSTER], check=True,
                   stdout=subprocess.DEVNULL)
    return took


def rss_100(pid):
    def rss():
        with open(f"/proc/{pid}/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
    before = rss()
    for i in range(100):
        api("POST", f"/api/v1/clusters/{CLUSTER}/services",
            {"service": f"s{i:03}", "image": IMAGE, "replicas": 1, "cmd": ["sleep", "86400"]})
    wait(lambda: (sum(1 for w in api("GET", f"/api/v1/clusters/{CLUSTER}/state")["cluster.workers"]
                      for s in w["serviceInstances"] if s["numOfRunningContainers"]) >= 100, None),
         limit=600)
    time.sleep(6)  # a periodic pass or two
    after = rss()
    for i in range(100):
        api("DELETE", f"/api/v1/clusters/{CLUSTER}/services/s{i:03}")
    return before, after


mcc_t, moved = mcc_trials()
swarm_t = swarm_trials()
ten = create_10()
rss_before, rss_after = rss_100(int(os.environ["BENCH_DAEMON_PID"]))
print(json.dumps({
    "trials": TRIALS,
    "mcc_p50": pct(mcc_t, 50), "mcc_p99": pct(mcc_t, 99), "mcc_max": max(mcc_t),
    "mcc_moved_mean": statistics.mean(moved),
    "swarm_p50": pct(swarm_t, 50), "swarm_p99": pct(swarm_t, 99), "swarm_max": max(swarm_t),
    "create_10": ten, "rss_before": rss_before, "rss_100": rss_after,
}))

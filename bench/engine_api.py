#!/usr/bin/env python3
"""Method (d) of bench/run: a cluster made straight through the engine API, in parallel.

    engine_api.py setup
    engine_api.py create --prefix P --nodes N --image IMG [--threads 16]
    engine_api.py delete --prefix P [--threads 16]

create: one user-defined bridge network P-net, one volume P-home, then the
containers P-frontend (hostname frontend) and P-node01.. (hostname node01..),
each created *and* started by a pool of --threads workers. delete: every
container labelled bench.prefix=P removed with force (in parallel), then the
network and the volume. Prints "inner_seconds=X" (time after the SDK is
imported), so the Python start-up can be told apart from the engine's work.

The script sets itself up: on first use it makes a venv in bench/.venv and
installs the `docker` SDK from PyPI into it, then re-runs itself there.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".venv")
VENV_PY = os.path.join(VENV, "bin", "python")

KEEPALIVE = 'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done'


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def ensure_venv():
    """Make bench/.venv with the docker SDK if needed; re-exec inside it."""
    if in_venv():
        return
    if not os.path.exists(VENV_PY):
        print("engine_api.py: creating %s" % VENV, file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    ok = subprocess.call([VENV_PY, "-c", "import docker"],
                         stderr=subprocess.DEVNULL) == 0
    if not ok:
        print("engine_api.py: installing the docker SDK from PyPI", file=sys.stderr)
        subprocess.check_call([VENV_PY, "-m", "pip", "install", "-q",
                               "--disable-pip-version-check", "docker>=7"])
    os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__)] + sys.argv[1:])


def parse(argv):
    import argparse
    p = argparse.ArgumentParser(prog="engine_api.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("setup")
    c = sub.add_parser("create")
    c.add_argument("--prefix", required=True)
    c.add_argument("--nodes", type=int, required=True)
    c.add_argument("--image", required=True)
    c.add_argument("--threads", type=int, default=16)
    d = sub.add_parser("delete")
    d.add_argument("--prefix", required=True)
    d.add_argument("--threads", type=int, default=16)
    return p.parse_args(argv)


def run_pool(threads, fn, items):
    from concurrent.futures import ThreadPoolExecutor
    errors = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for item, fut in [(i, pool.submit(fn, i)) for i in items]:
            try:
                fut.result()
            except Exception as e:  # report all, fail at the end
                errors.append("%s: %s" % (item, e))
    if errors:
        raise SystemExit("engine_api.py: %d failed:\n  %s" % (len(errors), "\n  ".join(errors)))


def create(api, args):
    net = args.prefix + "-net"
    vol = args.prefix + "-home"
    labels = {"bench.prefix": args.prefix}
    api.create_network(net, driver="bridge", labels=labels)
    api.create_volume(vol, labels=labels)
    width = max(2, len(str(args.nodes)))
    hosts = ["frontend"] + ["node%0*d" % (width, i) for i in range(1, args.nodes + 1)]

    def one(host):
        cid = api.create_container(
            args.image,
            command=["sh", "-c", KEEPALIVE],
            name="%s-%s" % (args.prefix, host),
            hostname=host,
            labels=labels,
            host_config=api.create_host_config(binds=["%s:/home" % vol]),
            networking_config=api.create_networking_config(
                {net: api.create_endpoint_config(aliases=[host])}),
        )["Id"]
        api.start(cid)

    run_pool(args.threads, one, hosts)


def delete(api, args):
    import time
    import docker
    flt = {"label": "bench.prefix=" + args.prefix}
    ids = [c["Id"] for c in api.containers(all=True, filters=flt)]
    run_pool(args.threads, lambda cid: api.remove_container(cid, force=True), ids)
    for n in api.networks(filters=flt):
        # the engine may still hold the endpoint of a container it has just
        # removed ("has active endpoints"): retry briefly, as mcc does
        for attempt in range(50):
            try:
                api.remove_network(n["Id"])
                break
            except docker.errors.APIError as e:
                if "active endpoints" not in str(e) or attempt == 49:
                    raise
                time.sleep(0.05)
    for v in (api.volumes(filters=flt) or {}).get("Volumes") or []:
        api.remove_volume(v["Name"])


def main():
    ensure_venv()
    args = parse(sys.argv[1:])
    import time
    t0 = time.monotonic()
    import docker
    if args.cmd == "setup":
        print("docker SDK %s in %s" % (docker.__version__, VENV))
        return
    # one pooled connection per thread, or urllib3 discards connections
    api = docker.APIClient(base_url=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
                           version="auto", timeout=300, max_pool_size=args.threads)
    t1 = time.monotonic()
    (create if args.cmd == "create" else delete)(api, args)
    t2 = time.monotonic()
    print("inner_seconds=%.3f import_and_connect_seconds=%.3f" % (t2 - t1, t1 - t0))


if __name__ == "__main__":
    main()

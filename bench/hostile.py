#!/usr/bin/env python3
"""bench/hostile's attacks on `mcc serve` (issue 15), one process per attack.

  hostile.py attack N --mcc PATH --work DIR --prefix P --rows FILE [--conns N] [--loadgen PATH]
  hostile.py sweep --mcc PATH --work DIR --prefix P     removes what the ledger names
  hostile.py report --json FILE --out FILE --label L --rows-dir DIR [--only 1,2] [--meta K=V ...]
  hostile.py slowloris --port N --conns N --seconds S   the attacker of attack 3 (run as nobody)

Standard library only. Every object an attack makes is written to the ledger
(WORK/ledger) before it is made, so that `sweep` (the driver's trap) can
remove it even when the attack process was killed. Each attack starts its
own daemon on a fresh state directory, so any one can run alone and one that
breaks a daemon does not skew the next.
"""

import base64
import collections
import hashlib
import hmac
import http.client
import json
import os
import re
import resource
import secrets
import selectors
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

IMAGE = "mcc-test/busybox:latest"
MIB = 1 << 20
TOKEN_RE = re.compile(r"mcc_[0-9a-f]{24}")


# --------------------------------------------------------------- utilities

def now():
    return time.monotonic()


def short(text, n=160):
    """One line of at most n characters, for a table cell."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def last_line(text):
    lines = [l for l in str(text).strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""


def ms(seconds):
    return "%.0f ms" % (seconds * 1000) if seconds < 10 else "%.1f s" % seconds


def mb(kib):
    return "%.1f MB" % (kib / 1024) if kib is not None else "?"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def local_env():
    return {k: v for k, v in os.environ.items() if not k.startswith(("MCC_", "CC_"))}


def pct_summary(values, fails=0, total=None):
    """'p50 X, max Y (n ok, k failed)' of latencies in seconds."""
    total = len(values) + fails if total is None else total
    if not values:
        return "all %d failed" % total
    s = "p50 %s, max %s" % (ms(statistics.median(values)), ms(max(values)))
    if fails:
        s += ", %d of %d failed" % (fails, total)
    return s


class Ctx:
    def __init__(self, args):
        self.mcc = os.path.abspath(args.mcc)
        self.work = args.work
        self.prefix = args.prefix
        self.args = args
        self.ledger_path = os.path.join(self.work, "ledger")
        self.rows = []
        self.daemons = []

    def ledger(self, kind, *what):
        with open(self.ledger_path, "a") as f:
            f.write(" ".join([kind] + [str(w) for w in what]) + "\n")

    def name(self, tag):
        return "%s-%s" % (self.prefix, tag)

    def row(self, rid, attack, result, verdict):
        """verdict: held, hole, or info (a measure without a verdict)."""
        result = re.sub(r"\b([0-9a-f]{12})[0-9a-f]{52}\b", r"\1…", result)  # container IDs
        result = re.sub(r"\b1 containers\b", "1 container", result)
        r = {"id": rid, "attack": attack, "result": result, "verdict": verdict}
        self.rows.append(r)
        print("  [%s] %s: %s — %s" % (rid, verdict, attack, result), file=sys.stderr, flush=True)
        return r

    # ------------------------------------------------------------ the CLI

    def run(self, args, env=None, timeout=120, stdin=None, input=None):
        """Runs mcc; (exit code, stdout, stderr, seconds). 124 on timeout."""
        t = now()
        try:
            p = subprocess.run([self.mcc] + list(args), env=env if env is not None else local_env(),
                               input=input, stdin=None if input is not None else (stdin or subprocess.DEVNULL),
                               capture_output=True, timeout=timeout)
            return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"), now() - t
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace")
            err = (e.stderr or b"").decode(errors="replace")
            return 124, out, err + "\n(timed out after %ds)" % timeout, now() - t

    def local(self, *args, timeout=120):
        return self.run(args, env=local_env(), timeout=timeout)

    def create_local(self, name, nodes=1, extra=()):
        self.ledger("cluster", name)
        rc, out, err, _ = self.local("create", "--name", name, "--image", IMAGE,
                                     "--nodes", str(nodes), *extra, timeout=180)
        if rc != 0:
            raise RuntimeError("set-up: mcc create %s failed (%d): %s" % (name, rc, last_line(err)))

    def delete_local(self, name):
        self.local("delete", name, timeout=180)
        self.local("gc", name, timeout=120)

    def run_container(self, *cmd, extra=(), env=None):
        """`mcc run` (locally unless env); the container's ID or None, and the answer."""
        args = ["run", "--image", IMAGE, "--env", "HOSTILE_BENCH=" + self.prefix, *extra, "--", *cmd]
        rc, out, err, _ = self.run(args, env=env if env is not None else local_env(), timeout=120)
        m = re.search(r"\b[0-9a-f]{12,64}\b", out)
        cid = m.group(0) if (rc == 0 and m) else None
        if cid:
            self.ledger("container", cid)
        return cid, rc, out, err


def docker(*args, timeout=60):
    try:
        p = subprocess.run(["docker"] + list(args), capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return 124, "", "docker %s timed out" % args[0]


def cluster_containers(name):
    rc, out, _ = docker("ps", "-a", "--filter", "label=mcc.cluster=" + name, "--format", "{{.Names}}")
    return [l for l in out.split() if l]


def created_since(t0, cluster=None, role=None):
    """Names of the containers the engine created since t0 (Unix time):
    those of the cluster, or those of an mcc.role; also the ones since removed."""
    rc, out, _ = docker("events", "--since", "%.3f" % (t0 - 0.05), "--until", "%.3f" % time.time(),
                        "--filter", "type=container", "--filter", "event=create", "--format",
                        '{{index .Actor.Attributes "name"}} {{index .Actor.Attributes "mcc.role"}}')
    names = []
    for line in out.splitlines():
        w = line.split()
        if len(w) < 2:
            continue
        if cluster is not None and w[0].startswith(cluster + "-"):
            names.append(w[0])
        elif role is not None and w[1] == role:
            names.append(w[0])
    return names


def made_phrase(created, exist):
    """What an attempt left on the engine, in words."""
    if not created and not exist:
        return "nothing made"
    n = max(len(created), len(exist))
    if exist:
        return "%d containers made, %d still there" % (n, len(exist))
    return "%d containers made, then removed again" % n


def nodes_of(containers):
    return [c for c in containers if not c.endswith("-mcc")]


def file_in(container, path):
    """The file's content in the container, or None if absent."""
    rc, out, _ = docker("exec", container, "cat", path, timeout=20)
    return out if rc == 0 else None


# --------------------------------------------------------------- signing

def sign(method, target, body, token, secret, timestamp=None, nonce=None):
    path, _, query = target.partition("?")
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    text = "\n".join(["MCC-HMAC-SHA256", method.upper(), path, query, ts, nonce,
                      hashlib.sha256(body).hexdigest()])
    return {
        "x-mcc-access-token": token,
        "x-mcc-timestamp": ts,
        "x-mcc-nonce": nonce,
        "x-mcc-signature": hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest(),
    }


class Answer:
    def __init__(self, status=None, body=b"", seconds=0.0, error=None, headers=None):
        self.status, self.body, self.seconds, self.error = status, body, seconds, error
        self.headers = headers or {}

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def message(self):
        j = self.json()
        if isinstance(j, dict) and isinstance(j.get("error"), dict):
            return "%s: %s" % (j["error"].get("code"), j["error"].get("message"))
        return short(self.body.decode(errors="replace"), 120)

    def what(self):
        if self.status is None:
            return "no answer (%s)" % self.error
        return "%d %s" % (self.status, short(self.message(), 120))


def hreq(port, method, target, body=b"", headers=None, timeout=10.0, read_for=None):
    """One request on a new connection. read_for: stop reading the body
    after that many seconds (a stream that does not end)."""
    t = now()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = dict(headers or {})
        if body:
            h.setdefault("content-type", "application/json")
        conn.request(method, target, body=body or None, headers=h)
        res = conn.getresponse()
        if read_for is None:
            data = res.read()
        else:
            data = b""
            end = now() + read_for
            conn.sock.settimeout(0.5)
            while now() < end:
                try:
                    chunk = res.read1(65536)
                except socket.timeout:
                    continue
                except (OSError, http.client.HTTPException):
                    break
                if not chunk:
                    break
                data += chunk
        return Answer(res.status, data, now() - t, headers={k.lower(): v for k, v in res.getheaders()})
    except (OSError, http.client.HTTPException) as e:
        return Answer(None, b"", now() - t, error=short(repr(e), 80))
    finally:
        conn.close()


# ------------------------------------------------------------- WebSockets

class WebSocket:
    """A minimal RFC 6455 client: enough for attach and forward."""

    def __init__(self, sock, status, headers, body, rest=b""):
        self.sock, self.status, self.headers, self.body = sock, status, headers, body
        self.buf = rest

    @staticmethod
    def open(port, target, headers, timeout=10.0):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except OSError as e:
            return WebSocket(None, None, {}, ("connect: %r" % e).encode())
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % target, "Host: 127.0.0.1:%d" % port, "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        lines += ["%s: %s" % kv for kv in headers.items()]
        try:
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            s.close()
            return WebSocket(None, None, {}, ("handshake: %r" % e).encode())
        head, _, rest = data.partition(b"\r\n\r\n")
        hl = head.decode(errors="replace").split("\r\n")
        try:
            status = int(hl[0].split()[1])
        except (IndexError, ValueError):
            s.close()
            return WebSocket(None, None, {}, b"no HTTP answer: " + head[:100])
        hdrs = {}
        for l in hl[1:]:
            k, _, v = l.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if status != 101:
            n = int(hdrs.get("content-length", "0") or 0)
            s.settimeout(3)
            try:
                while len(rest) < n:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    rest += chunk
            except OSError:
                pass
            s.close()
            return WebSocket(None, status, hdrs, rest)
        return WebSocket(s, 101, hdrs, b"", rest)

    def message(self):
        return Answer(self.status, self.body).message()

    def send(self, payload, opcode=2):
        if isinstance(payload, str):
            payload = payload.encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - now()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def recv(self, timeout):
        """(opcode, payload); raises socket.timeout, EOFError or OSError."""
        deadline = now() + timeout
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4, deadline)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10, deadline)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        if b1 & 0x80:
            off += 4  # servers do not mask; skip a mask if one came
        self._need(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, payload

    def collect(self, timeout, until=None, raw=False):
        """Output (stdout+stderr text; raw: the binary frames as they are,
        as a forward sends them), the exit control if any, and how it ended."""
        out, exit_ctl, ended = b"", None, "open"
        deadline = now() + timeout
        while now() < deadline:
            try:
                op, p = self.recv(max(0.05, deadline - now()))
            except socket.timeout:
                break
            except (EOFError, OSError):
                ended = "closed"
                break
            if op == 2 and p:
                out += p if raw else p[1:]
            elif op == 1:
                exit_ctl = p.decode(errors="replace")
            elif op == 8:
                ended = "closed"
                break
            elif op == 9:
                try:
                    self.send(p, opcode=10)
                except OSError:
                    pass
            if until is not None and until in out:
                break
        return out.decode(errors="replace"), exit_ctl, ended

    def close(self):
        if self.sock:
            try:
                self.send(b"\x03\xe8", opcode=8)
            except OSError:
                pass
            self.sock.close()
            self.sock = None


# ----------------------------------------------------------------- daemon

class Daemon:
    def __init__(self, ctx, tag, extra=()):
        self.ctx = ctx
        self.state = os.path.join(ctx.work, "state-" + tag)
        self.port = free_port()
        self.log = os.path.join(ctx.work, "serve-%s.log" % tag)
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [ctx.mcc, "serve", "--state-dir", self.state, "--listen", "127.0.0.1:%d" % self.port, *extra],
            env=local_env(), stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            start_new_session=True)
        self.pid = self.proc.pid
        ctx.ledger("daemon", self.pid, self.state)
        ctx.daemons.append(self)
        creds = os.path.join(self.state, "credentials")
        deadline = now() + 30
        while now() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("set-up: mcc serve exited %s: %s" % (self.proc.returncode, self.log_tail()))
            if os.path.exists(creds) and os.path.getsize(creds) > 0 and \
                    hreq(self.port, "GET", "/healthz", timeout=2).status == 200:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("set-up: mcc serve did not come up in 30 s: " + self.log_tail())
        kv = dict(l.split("=", 1) for l in open(creds).read().split("\n") if "=" in l)
        self.url = kv["MCC_ENDPOINT_URL"]
        self.admin = (kv["MCC_ACCESS_TOKEN"], kv["MCC_SECRET_KEY"])

    def log_tail(self):
        try:
            return short(open(self.log, errors="replace").read()[-400:], 300)
        except OSError:
            return ""

    def env(self, cred=None):
        tok, sec = cred or self.admin
        e = local_env()
        e.update(MCC_ENDPOINT_URL=self.url, MCC_ACCESS_TOKEN=tok, MCC_SECRET_KEY=sec)
        return e

    def token(self, name, read_only=False):
        """`mcc token create` through the daemon, with the admin's credentials."""
        args = ["token", "create", "--name", name] + (["--read-only"] if read_only else [])
        rc, out, err, _ = self.ctx.run(args, env=self.env(), timeout=30)
        kv = dict(l.split("=", 1) for l in out.split("\n") if "=" in l)
        if rc != 0 or "MCC_ACCESS_TOKEN" not in kv:
            raise RuntimeError("set-up: mcc token create failed (%d): %s" % (rc, last_line(err)))
        return kv["MCC_ACCESS_TOKEN"], kv["MCC_SECRET_KEY"]

    def call(self, method, target, body=b"", cred=None, timeout=10.0, read_for=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        tok, sec = cred or self.admin
        return hreq(self.port, method, target, body, sign(method, target, body, tok, sec),
                    timeout=timeout, read_for=read_for)

    def ws(self, target, cred=None, timeout=10.0):
        tok, sec = cred or self.admin
        return WebSocket.open(self.port, target, sign("GET", target, b"", tok, sec), timeout=timeout)

    def status_kib(self, field):
        try:
            for l in open("/proc/%d/status" % self.pid):
                if l.startswith(field + ":"):
                    return int(l.split()[1])
        except OSError:
            return None

    def rss(self):
        return self.status_kib("VmRSS")

    def hwm(self):
        return self.status_kib("VmHWM")

    def cpu(self):
        """CPU seconds the daemon used so far."""
        try:
            f = open("/proc/%d/stat" % self.pid).read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def fds(self):
        try:
            return len(os.listdir("/proc/%d/fd" % self.pid))
        except OSError:
            return None

    def nofile(self):
        try:
            for l in open("/proc/%d/limits" % self.pid):
                if l.startswith("Max open files"):
                    return l.split()[3]
        except OSError:
            return "?"

    def alive(self):
        return self.proc.poll() is None

    def wait_op(self, op_id, timeout=120):
        """The operation's final JSON (or the last one seen, if it outlived timeout)."""
        deadline = now() + timeout
        last = None
        while now() < deadline:
            a = self.call("GET", "/api/v1/operations/" + op_id, timeout=10)
            j = a.json() if a.status == 200 else None
            if isinstance(j, dict):
                last = j
                if j.get("state") != "running":
                    return j
            time.sleep(0.5)
        return last

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.logf.close()


def op_outcome(d, a, timeout=120):
    """For an answer that may have started an operation: a phrase, and whether one started."""
    if a.status == 202:
        j = a.json() or {}
        op = d.wait_op(j.get("id", ""), timeout=timeout) if j.get("id") else None
        if op is None:
            return "202, operation started", True
        err = (op.get("error") or {}).get("message", "")
        return short("202, operation started, then %s%s" % (op.get("state"), (": " + err) if err else ""), 220), True
    return a.what(), False


# ---------------------------------------------------------------- attack 1

def attack1(ctx):
    """A read-only token tries to run commands and open a forward."""
    d = Daemon(ctx, "a1")
    ro = d.token("ro", read_only=True)
    c = ctx.name("ro")
    fe = c + "-frontend"
    ctx.create_local(c, nodes=1)
    try:
        # 1a: mcc enter through the daemon
        mark = "/tmp/hostile-1a"
        rc, out, err, _ = ctx.run(["enter", c, "--", "sh", "-c", "id; echo x > " + mark],
                                  env=d.env(ro), timeout=30)
        written = file_in(fe, mark) is not None
        uid0 = "uid=0" in out
        said = short(out.strip(), 60) if out.strip() else last_line(err)
        ctx.row("1a", "read-only token: `mcc enter C -- sh -c 'id; echo x > /tmp/x'`",
                "exit %d; printed: %s; file %s" % (rc, short(said, 90), "written" if written else "not written"),
                "hole" if (written or uid0) else "held")

        # 1b: raw attach WebSocket
        mark = "/tmp/hostile-1b"
        q = urllib.parse.urlencode({"command": json.dumps(["sh", "-c", "id; echo y > " + mark])},
                                   quote_via=urllib.parse.quote)
        ws = d.ws("/api/v1/clusters/%s/nodes/frontend/attach?%s" % (c, q), cred=ro)
        if ws.status == 101:
            out, exit_ctl, _ = ws.collect(10)
            ws.close()
            try:
                code = json.loads(exit_ctl)["exit"]["code"]
            except (TypeError, ValueError, KeyError):
                code = short(exit_ctl or "none", 40)
            res = "101; ran: %s; exit %s" % (short(out.strip(), 60), code)
        else:
            res = "%s %s" % (ws.status, short(ws.message(), 100))
        written = file_in(fe, mark) is not None
        ctx.row("1b", "read-only token: raw WebSocket `GET …/nodes/frontend/attach?command=[sh,-c,…]`",
                res + "; file %s" % ("written" if written else "not written"),
                "hole" if (ws.status == 101 or written) else "held")

        # 1c: forward to a run container's port
        script = ("printf '#!/bin/sh\\nread l; echo \"$l\" >> /tmp/got; echo \"pong $l\"\\n' > /tmp/h; "
                  "chmod +x /tmp/h; exec nc -ll -p 7000 -e /tmp/h")
        cid, rc, out, err = ctx.run_container("sh", "-c", script)
        if not cid:
            ctx.row("1c", "read-only token: `GET /api/v1/containers/{id}/forward?port=7000`",
                    "set-up failed: mcc run exit %d: %s" % (rc, last_line(err)), "error")
        else:
            ip = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid)[1].strip()
            for _ in range(50):
                try:
                    socket.create_connection((ip, 7000), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            ws = d.ws("/api/v1/containers/%s/forward?port=7000" % cid, cred=ro)
            marker = "hostile-1c-" + secrets.token_hex(4)
            if ws.status == 101:
                try:
                    ws.send(marker + "\n")
                    out, _, _ = ws.collect(5, until=("pong " + marker).encode(), raw=True)
                except OSError as e:
                    out = "send failed: %r" % e
                ws.close()
                res = "101; answer: %s" % short(out.strip() or "(none)", 60)
            else:
                res = "%s %s" % (ws.status, short(ws.message(), 100))
            got = file_in(cid, "/tmp/got") or ""
            reached = marker in got
            ctx.row("1c", "read-only token: `GET /api/v1/containers/{id}/forward?port=7000` to a `mcc run` listener",
                    res + "; bytes %s the container" % ("reached" if reached else "did not reach"),
                    "hole" if (ws.status == 101 or reached) else "held")
            ctx.local("rm", cid, timeout=60)

        # 1d: mcc exec
        mark = "/tmp/hostile-1d"
        rc, out, err, _ = ctx.run(["exec", c, "--", "sh", "-c", "echo z > " + mark], env=d.env(ro), timeout=30)
        ran = file_in(fe, mark) is not None
        ctx.row("1d", "read-only token: `mcc exec C -- sh -c …`",
                "exit %d: %s; %s" % (rc, short(last_line(err) or last_line(out), 100), "ran" if ran else "did not run"),
                "hole" if (rc == 0 or ran) else "held")
    finally:
        ctx.delete_local(c)
        d.stop()


# ---------------------------------------------------------------- attack 2

def upload(port, target, length, headers, result, chunk=MIB, timeout=120):
    """POSTs `length` bytes, reading the answer as soon as one comes."""
    t0 = now()
    sent = 0
    r = {"status": None, "seconds": None, "sent": 0, "how": ""}
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        head = ["POST %s HTTP/1.1" % target, "Host: 127.0.0.1:%d" % port,
                "Content-Type: application/json", "Content-Length: %d" % length]
        head += ["%s: %s" % kv for kv in headers.items()]
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        s.setblocking(False)
        block = b"a" * chunk
        answer = b""
        deadline = t0 + timeout
        while now() < deadline:
            want_w = [s] if sent < length else []
            rd, wr = selectors_select([s], want_w, 1.0)
            if rd:
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    data = None
                except OSError as e:
                    r["how"] = "reset (%s)" % e.__class__.__name__
                    break
                if data == b"":
                    r["how"] = "closed"
                    break
                if data:
                    answer += data
                    if b"\r\n\r\n" in answer:
                        break
            if wr:
                try:
                    n = s.send(block[: min(chunk, length - sent)])
                    sent += n
                except BlockingIOError:
                    pass
                except OSError as e:
                    r["how"] = "send failed (%s)" % e.__class__.__name__
                    # the answer may still be readable
                    s.setblocking(True)
                    s.settimeout(2)
                    try:
                        answer += s.recv(65536)
                    except OSError:
                        pass
                    break
        else:
            r["how"] = "no answer in %ds" % timeout
        m = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
        if m:
            r["status"] = int(m.group(1))
        s.close()
    except Exception as e:  # a result in any case
        r["how"] = "failed: %s" % short(repr(e), 60)
    r["seconds"] = now() - t0
    r["sent"] = sent
    result.append(r)


def selectors_select(rd, wr, timeout):
    import select
    try:
        return select.select(rd, wr, [], timeout)[:2]
    except (OSError, ValueError):
        return [], []


class Sampler(threading.Thread):
    """Samples the daemon's RSS and /healthz latency until stopped."""

    def __init__(self, d, every=0.1):
        super().__init__(daemon=True)
        self.d, self.every = d, every
        self.stopped = threading.Event()
        self.rss_max = 0
        self.health, self.health_fail = [], 0

    def run(self):
        rss_t = threading.Thread(target=self._rss, daemon=True)
        rss_t.start()
        while not self.stopped.is_set():
            a = hreq(self.d.port, "GET", "/healthz", timeout=10)
            if a.status == 200:
                self.health.append(a.seconds)
            else:
                self.health_fail += 1
            self.stopped.wait(self.every)

    def _rss(self):
        while not self.stopped.is_set():
            r = self.d.rss()
            if r:
                self.rss_max = max(self.rss_max, r)
            time.sleep(0.05)

    def stop(self):
        self.stopped.set()
        self.join(15)


def attack2(ctx):
    """Bodies read before the signature is checked; and what events tell a read-only token."""
    d = Daemon(ctx, "a2")
    ro = d.token("ro", read_only=True)
    other = d.token("other")
    try:
        time.sleep(1)
        before = d.rss()
        n, length = 12, 99614720
        sampler = Sampler(d)
        sampler.start()
        results = []
        threads = []
        for _ in range(n):
            h = sign("POST", "/api/v1/vpcs", b"", ro[0], "not-the-secret")
            h["x-mcc-signature"] = secrets.token_hex(32)
            threads.append(threading.Thread(target=upload, args=(d.port, "/api/v1/vpcs", length, h, results)))
        t0 = now()
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        took = now() - t0
        time.sleep(2)
        sampler.stop()
        after = d.rss()
        peak = max(d.hwm() or 0, sampler.rss_max)
        statuses = collections.Counter(str(r["status"] or r["how"] or "none") for r in results)
        secs = sorted(r["seconds"] for r in results) or [0.0]
        sent = sorted(r["sent"] for r in results) or [0]
        grew = (peak - (before or 0)) / 1024
        ctx.row("2a", "12 parallel `POST /api/v1/vpcs`, `Content-Length: 99614720` streamed, read-only token's ID with a wrong secret",
                "answers: %s; each after %.1f–%.1f s with %s MiB sent (all done in %.1f s); "
                "daemon RSS %s before, peak %s, %s after; /healthz during: %s"
                % (", ".join("%s×%d" % kv for kv in sorted(statuses.items())), secs[0], secs[-1],
                   ("%.0f" % (sent[0] / MIB)) if round(sent[0] / MIB) == round(sent[-1] / MIB)
                   else "%.0f–%.0f" % (sent[0] / MIB, sent[-1] / MIB), took, mb(before), mb(peak), mb(after),
                   pct_summary(sampler.health, sampler.health_fail)),
                "hole" if grew > 200 else "held")

        # 2b: the event log as a read-only token sees it
        d.call("GET", "/api/v1/clusters")  # some activity by the admin
        a = d.call("GET", "/api/v1/events?since=0", cred=ro, read_for=3, timeout=10)
        seen = set(TOKEN_RE.findall(a.body.decode(errors="replace")))
        others = sorted(seen - {ro[0]})
        names = []
        if d.admin[0] in others:
            names.append("the admin's")
        if other[0] in others:
            names.append("another token's")
        t = d.call("GET", "/api/v1/tokens", cred=ro)
        listed = set(TOKEN_RE.findall(t.body.decode(errors="replace"))) - {ro[0]}
        ctx.row("2b", "read-only token: `GET /api/v1/events?since=0` (and `GET /api/v1/tokens`)",
                "events: %s, %s; `GET /api/v1/tokens`: %s%s"
                % (a.status, ("shows %s ID (%d other IDs)" % (" and ".join(names) or "other", len(others)))
                   if others else "no other token's ID",
                   t.status, ", lists %d other tokens" % len(listed) if (t.status == 200 and listed) else ""),
                "hole" if (others or (t.status == 200 and listed)) else "held")
    finally:
        d.stop()


# ---------------------------------------------------------------- attack 3

def slowloris(args):
    """Opens N connections to 127.0.0.1:PORT and sends one header byte
    on each every 5 s, never finishing the header; reopens any the server
    closes. Prints a JSON line of counts every second on stdout."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    want = min(args.conns, soft - 8)
    addr = ("127.0.0.1", args.port)
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    sel = selectors.DefaultSelector()
    conns = {}  # fileno -> [sock, state, pos, next_send]
    c = collections.Counter()
    stop = now() + args.seconds
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def open_one():
        try:
            s = socket.socket()
        except OSError as e:
            c["socket_errors"] += 1
            c["last_error"] = 0
            return False
        s.setblocking(False)
        err = s.connect_ex(addr)
        if err not in (0, 115):  # EINPROGRESS
            c["connect_errors"] += 1
            s.close()
            return False
        conns[s.fileno()] = [s, "connecting", 0, 0.0]
        sel.register(s, selectors.EVENT_WRITE)
        c["opened"] += 1
        return True

    def drop(fd, why):
        s = conns.pop(fd)[0]
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
        c[why] += 1

    def report():
        states = collections.Counter(v[1] for v in conns.values())
        print(json.dumps({"t": round(args.seconds - (stop - now()), 1), "want": want, "nofile": soft,
                          "connected": states["open"], "connecting": states["connecting"],
                          **{k: v for k, v in c.items()}}), flush=True)

    last_report = 0.0
    budget, budget_at = 0.0, now()
    while now() < stop:
        # keep N sockets (re)opening, a batch at a time; once all N were
        # opened, reopen at most 500 a second (a daemon that closes them
        # must not turn this into a connect flood that measures the kernel)
        batch = 0
        t = now()
        budget = min(500.0, budget + (t - budget_at) * 500)
        budget_at = t
        cap = 500 if c["opened"] < want else int(budget)
        while len(conns) < want and batch < cap:
            if not open_one():
                break
            batch += 1
        if c["opened"] > want:
            budget -= batch
        for key, ev in sel.select(timeout=0.05):
            fd = key.fd
            v = conns.get(fd)
            if v is None:
                continue
            s = v[0]
            if v[1] == "connecting":
                e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e:
                    drop(fd, "connect_failed")
                    continue
                v[1] = "open"
                c["connected_ever"] += 1
                try:
                    s.send(head[:1])
                    v[2] = 1
                except OSError:
                    drop(fd, "closed_by_peer")
                    continue
                v[3] = now() + 5
                sel.modify(s, selectors.EVENT_READ)
            else:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if data:
                    c["answered"] += 1  # e.g. a 408; then the server closes
                drop(fd, "closed_by_peer")
        # one byte every 5 s on each open connection
        t = now()
        for fd, v in list(conns.items()):
            if v[1] == "open" and v[3] <= t:
                b = head[v[2]:v[2] + 1] if v[2] < len(head) else b"a"
                try:
                    v[0].send(b)
                    v[2] += 1
                    v[3] = t + 5
                except OSError:
                    drop(fd, "closed_by_peer")
        if now() - last_report >= 1:
            last_report = now()
            report()
    report()


def attack3(ctx):
    """An unprivileged user's many half-open connections."""
    d = Daemon(ctx, "a3")
    attacker = None
    nobody_dir = None
    try:
        def probe():
            h = hreq(d.port, "GET", "/healthz", timeout=10)
            g = d.call("GET", "/api/v1/clusters", timeout=10)
            return h, g

        def measure(rounds, pause):
            hl, hf, gl, gf = [], 0, [], 0
            for _ in range(rounds):
                h, g = probe()
                if h.status == 200:
                    hl.append(h.seconds)
                else:
                    hf += 1
                if g.status == 200:
                    gl.append(g.seconds)
                else:
                    gf += 1
                time.sleep(pause)
            return hl, hf, gl, gf

        base = measure(5, 0.2)
        idle_rss, idle_fds = d.rss(), d.fds()
        nobody_dir = tempfile.mkdtemp(prefix="mcc-hostile-nobody.")
        os.chmod(nobody_dir, 0o755)
        script = os.path.join(nobody_dir, "hostile.py")
        with open(__file__, "rb") as src, open(script, "wb") as dst:
            dst.write(src.read())
        os.chmod(script, 0o644)
        py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        hold = 300
        cmd = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
               py, script, "slowloris", "--port", str(d.port), "--conns", str(ctx.args.conns),
               "--seconds", str(hold)]
        attacker = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd=nobody_dir, start_new_session=True)
        ctx.ledger("process", attacker.pid, "slowloris")
        status = {}
        lock = threading.Lock()

        def reader():
            for line in attacker.stdout:
                try:
                    j = json.loads(line)
                except ValueError:
                    continue
                with lock:
                    status.clear()
                    status.update(j)

        threading.Thread(target=reader, daemon=True).start()
        # ramp: until the connected count stops growing for 5 s, at most 60 s
        t0 = now()
        best, best_at = -1, now()
        peak_fds, peak_rss = 0, 0
        while now() - t0 < 60 and attacker.poll() is None:
            time.sleep(1)
            with lock:
                cnt = status.get("connected", 0)
            peak_fds = max(peak_fds, d.fds() or 0)
            peak_rss = max(peak_rss, d.rss() or 0)
            if cnt > best:
                best, best_at = cnt, now()
            elif now() - best_at >= 5 and best > 0:
                break
        ramp = now() - t0
        with lock:
            at_ramp = dict(status)
        # measure under attack: 8 rounds, each /healthz and a signed GET, 10 s timeout each
        samples = []
        hl, hf, gl, gf = [], 0, [], 0
        t_measure, cpu0 = now(), d.cpu()
        for _ in range(8):
            if now() - t_measure > 100:
                break
            h, g = probe()
            (hl.append(h.seconds) if h.status == 200 else None)
            hf += h.status != 200
            (gl.append(g.seconds) if g.status == 200 else None)
            gf += g.status != 200
            samples.append((h.what() if h.status != 200 else "", g.what() if g.status != 200 else ""))
            peak_fds = max(peak_fds, d.fds() or 0)
            peak_rss = max(peak_rss, d.rss() or 0)
            time.sleep(1)
        cpu_share = (d.cpu() - cpu0) / max(0.1, now() - t_measure)
        with lock:
            end = dict(status)
        fails = sorted(set(x for pair in samples for x in pair if x))
        alive = d.alive()
        if attacker.poll() is None:
            os.killpg(attacker.pid, signal.SIGTERM)
            try:
                attacker.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(attacker.pid, signal.SIGKILL)
                attacker.wait(5)
        err = attacker.stderr.read().decode(errors="replace")
        time.sleep(3)
        after = measure(3, 0.2)
        reached = max(at_ramp.get("connected", 0), end.get("connected", 0))
        ctx.row("3a", "`nobody` opens N slow connections (one header byte per 5 s each; closed ones reopened)",
                "N asked %d, attacker's RLIMIT_NOFILE %s; %d open after %.0f s ramp, %d at the end "
                "(%d connecting, %d closed by the daemon, %d reopened); daemon's RLIMIT_NOFILE %s%s"
                % (ctx.args.conns, at_ramp.get("nofile", "?"), at_ramp.get("connected", 0), ramp,
                   end.get("connected", 0), end.get("connecting", 0), end.get("closed_by_peer", 0),
                   max(0, end.get("opened", 0) - end.get("want", 0)), d.nofile(),
                   ("; attacker stderr: " + short(err, 80)) if err.strip() else ""),
                "info")
        bad = hf or gf or (hl and max(hl) > 1) or (gl and max(gl) > 1) or not alive
        ctx.row("3b", "…meanwhile: `/healthz` and signed `GET /api/v1/clusters` (10 s timeout = failed), daemon RSS and fds",
                "before: healthz %s, GET %s; during: healthz %s, GET %s%s; daemon fds %s → peak %s, RSS %s → peak %s; "
                "daemon CPU %.0f%% of a core meanwhile; %s; after the attacker left: healthz %s, GET %s"
                % (pct_summary(base[0], base[1]), pct_summary(base[2], base[3]),
                   pct_summary(hl, hf), pct_summary(gl, gf),
                   (" (" + short("; ".join(fails), 120) + ")") if fails else "",
                   idle_fds, peak_fds, mb(idle_rss), mb(peak_rss), cpu_share * 100,
                   "daemon still running" if alive else "daemon EXITED (%s)" % d.proc.returncode,
                   pct_summary(after[0], after[1]), pct_summary(after[2], after[3])),
                "hole" if bad else "held")
    finally:
        if attacker is not None and attacker.poll() is None:
            try:
                os.killpg(attacker.pid, signal.SIGKILL)
            except OSError:
                pass
        if nobody_dir:
            subprocess.run(["rm", "-rf", nobody_dir])
        d.stop()


# ---------------------------------------------------------------- attack 4

def attack4(ctx):
    """A revoked token's open attach session."""
    d = Daemon(ctx, "a4")
    tok = d.token("victim")
    c = ctx.name("rv")
    fe = c + "-frontend"
    ctx.create_local(c, nodes=0)
    try:
        q = urllib.parse.urlencode({"command": json.dumps(["sh"])}, quote_via=urllib.parse.quote)
        ws = d.ws("/api/v1/clusters/%s/nodes/frontend/attach?%s" % (c, q), cred=tok)
        if ws.status != 101:
            ctx.row("4", "revoke a token while its `attach` shell is open, then type into it",
                    "set-up failed: attach answered %s %s" % (ws.status, short(ws.message(), 80)), "error")
            return
        m = secrets.token_hex(4)
        ws.send("echo one-%s\n" % m)
        out1, _, _ = ws.collect(5, until=("one-" + m).encode())
        a = d.call("DELETE", "/api/v1/tokens/" + tok[0])
        new = d.call("GET", "/api/v1/clusters", cred=tok)
        time.sleep(0.5)
        try:
            ws.send("echo two-%s; touch /tmp/revoked-%s\n" % (m, m))
            out2, _, ended = ws.collect(5, until=("two-" + m).encode())
        except OSError as e:
            out2, ended = "", "send failed (%s)" % e.__class__.__name__
        ws.close()
        ran = ("two-" + m) in out2 or file_in(fe, "/tmp/revoked-" + m) is not None
        ctx.row("4", "revoke a token (`DELETE /api/v1/tokens/{t}` by the admin) while its `attach` shell is open, then type into it",
                "first command %s; revoke %s; a new request with it %s; the command after revoking %s (socket %s)"
                % ("ran" if ("one-" + m) in out1 else "did not run", a.status, new.status,
                   "RAN" if ran else "did not run", ended),
                "hole" if ran else "held")
    finally:
        ctx.delete_local(c)
        d.stop()


# ---------------------------------------------------------------- attack 5

def vpc_ids(text):
    return re.findall(r"\bvpc-[0-9a-f]{8}\b", text)


def attack5(ctx):
    """Loopback and multicast subnets."""
    d = Daemon(ctx, "a5")
    made_vpcs = []
    try:
        for rid, where, subnet in (("5a", "locally", "127.0.0.0/24"), ("5b", "through the daemon", "127.0.0.0/24"),
                                   ("5e", "locally", "224.0.0.0/24"), ("5f", "through the daemon", "224.0.0.0/24")):
            c = ctx.name(rid)
            ctx.ledger("cluster", c)
            env = local_env() if where == "locally" else d.env()
            t0 = time.time()
            rc, out, err, _ = ctx.run(["create", "--name", c, "--image", IMAGE, "--nodes", "0", "--subnet", subnet],
                                      env=env, timeout=120)
            made, exist = created_since(t0, cluster=c), cluster_containers(c)
            ctx.row(rid, "`mcc create --subnet %s` %s" % (subnet, where),
                    "exit %d: %s; %s" % (rc, short(last_line(err) or last_line(out), 110), made_phrase(made, exist)),
                    "held" if (rc == 2 and not made) else "hole")
            ctx.delete_local(c)
        for rid, where in (("5c", "locally"), ("5d", "through the daemon")):
            name = ctx.name("x" + rid)
            env = local_env() if where == "locally" else d.env()
            before = set(vpc_ids(docker("network", "ls", "--format", "{{.Name}}")[1]))
            rc, out, err, _ = ctx.run(["vpc", "create", "--cidr", "127.0.0.0/24", "--name", name], env=env, timeout=60)
            ids = vpc_ids(out)
            after = set(vpc_ids(docker("network", "ls", "--format", "{{.Name}}")[1]))
            new = [i for i in after - before
                   if name in docker("network", "inspect", "-f", "{{json .Labels}}", i)[1]]
            for i in set(ids) | set(new):
                ctx.ledger("vpc", i)
                made_vpcs.append(i)
            ctx.row(rid, "`mcc vpc create --cidr 127.0.0.0/24 --name x` %s" % where,
                    "exit %d: %s" % (rc, short(last_line(err) or last_line(out), 120)),
                    "held" if (rc != 0 and not new) else "hole")
            for i in set(ids) | set(new):
                ctx.local("vpc", "delete", i, timeout=60)
    finally:
        d.stop()


# ---------------------------------------------------------------- attack 6

def run_containers_with_marker(prefix):
    rc, out, _ = docker("ps", "-aq", "--no-trunc", "--filter", "label=mcc.role=run")
    mine = []
    for cid in out.split():
        rc, env, _ = docker("inspect", "-f", "{{json .Config.Env}}", cid)
        if ("HOSTILE_BENCH=" + prefix) in env:
            mine.append(cid)
    return mine


def attack6(ctx):
    """Bad input through the API."""
    d = Daemon(ctx, "a6")
    clusters = []
    vol = None
    try:
        def create(rid, what, body):
            name = body.get("name")
            if name:
                ctx.ledger("cluster", name)
                clusters.append(name)
            t0 = time.time()
            a = d.call("POST", "/api/v1/clusters", body)
            phrase, started = op_outcome(d, a)
            made, exist = created_since(t0, cluster=name), cluster_containers(name)
            nodes = nodes_of(exist)
            ctx.row(rid, what, phrase + "; " + made_phrase(made, exist) +
                    ((" (nodes: %s)" % ", ".join(n[len(name) + 1:] for n in nodes)) if nodes else ""),
                    "hole" if started or made or (a.status or 500) >= 500 else "held")
            if name:
                ctx.delete_local(name)

        create("6a", "API create with `subnet: 0.0.0.0/0`",
               {"name": ctx.name("6a"), "image": IMAGE, "nodes": 0, "subnet": "0.0.0.0/0"})
        create("6b", "API create with `vpc: vpc-00000000`",
               {"name": ctx.name("6b"), "image": IMAGE, "nodes": 0, "vpc": "vpc-00000000"})

        c = ctx.name("6c")
        clusters.append(c)
        ctx.create_local(c, nodes=1)
        t0 = time.time()
        a = d.call("POST", "/api/v1/clusters/%s/nodes" % c, {"count": 100000})
        if a.status == 202:
            op = (a.json() or {}).get("id", "")
            time.sleep(1)
            x = d.call("DELETE", "/api/v1/operations/" + op)
            fin = d.wait_op(op, timeout=90) or {}
            err = (fin.get("error") or {}).get("message", "")
            res = "202, operation started; cancel after 1 s: %s; it ended %s%s" % (
                x.status, fin.get("state", "still running"), (": " + short(err, 120)) if err else "")
            hole = True
        else:
            res, hole = a.what(), (a.status or 500) >= 500
        made = [n for n in created_since(t0, cluster=c)]
        res += "; %d nodes made; the cluster has %d nodes after" % (len(made), len(nodes_of(cluster_containers(c))))
        ctx.row("6c", "API addnode `count: 100000` on a 1-worker cluster", res, "hole" if hole else "held")
        a = d.call("DELETE", "/api/v1/clusters/%s/nodes/frontend" % c)
        phrase, started = op_outcome(d, a, timeout=60)
        left = cluster_containers(c)
        ctx.row("6d", "API `DELETE /api/v1/clusters/C/nodes/frontend`",
                phrase + ("; front-end %s" % ("still there" if (c + "-frontend") in left else "GONE")),
                "hole" if started or (a.status or 500) >= 500 else "held")
        ctx.delete_local(c)

        def run_api(rid, what, spec):
            before = set(run_containers_with_marker(ctx.prefix))
            t0 = time.time()
            a = d.call("POST", "/api/v1/containers", spec)
            j = a.json() or {}
            if isinstance(j, dict) and j.get("id"):
                ctx.ledger("container", j["id"])
            made = set(run_containers_with_marker(ctx.prefix)) - before
            for cid in made:
                ctx.ledger("container", cid)
            created = created_since(t0, role="run")
            ctx.row(rid, what, a.what() + "; " + made_phrase(created, made),
                    "held" if (a.status and 400 <= a.status < 500 and not made and not created) else "hole")
            for cid in made:
                ctx.local("rm", cid, timeout=60)

        marker = ["HOSTILE_BENCH=" + ctx.prefix]
        run_api("6e", "`POST /api/v1/containers` with `user: \"a:b:c\"`",
                {"image": IMAGE, "user": "a:b:c", "env": marker, "cmd": ["true"]})

        def run_cli(rid, what, extra):
            before = set(run_containers_with_marker(ctx.prefix))
            t0 = time.time()
            cid, rc, out, err = ctx.run_container("true", extra=extra, env=d.env())
            made = set(run_containers_with_marker(ctx.prefix)) - before
            for x in made:
                ctx.ledger("container", x)
            created = created_since(t0, role="run")
            ctx.row(rid, what, "exit %d: %s; %s" % (rc, short(last_line(err) or last_line(out), 110),
                                                   made_phrase(created, made)),
                    "held" if (rc == 2 and not made and not created) else "hole")
            for x in made:
                ctx.local("rm", x, timeout=60)

        run_cli("6f", "`mcc run --user root:root:root` through the daemon", ["--user", "root:root:root"])
        run_cli("6g", "`mcc run --user 99999999999999999999` through the daemon", ["--user", "99999999999999999999"])
        ctx.ledger("volume-name", ctx.name("v"))
        rc, out, err, _ = ctx.run(["volume", "create", "--size", "16M", "--name", ctx.name("v")], env=d.env(), timeout=60)
        m = re.search(r"\bvol-[0-9a-f]{8}\b", out)
        if m:
            vol = m.group(0)
            ctx.ledger("volume", vol)
            run_cli("6h", "`mcc run --volume VOL:/proc` (a real volume) through the daemon", ["--volume", vol + ":/proc"])
        else:
            ctx.row("6h", "`mcc run --volume VOL:/proc` (a real volume) through the daemon",
                    "set-up failed: mcc volume create exit %d: %s" % (rc, last_line(err)), "error")

        c = ctx.name("6i")
        ctx.ledger("cluster", c)
        clusters.append(c)
        net = "10.%d.%d" % (200 + secrets.randbelow(50), secrets.randbelow(250))
        t0 = time.time()
        rc, out, err, _ = ctx.run(["create", "--name", c, "--image", IMAGE, "--nodes", "1",
                                   "--subnet", net + ".0/24", "--ip", "node05=%s.50" % net], env=d.env(), timeout=120)
        made, exist = created_since(t0, cluster=c), cluster_containers(c)
        ctx.row("6i", "create `--nodes 1 --ip node05=…` through the daemon",
                "exit %d: %s; %s" % (rc, short(last_line(err) or last_line(out), 110), made_phrase(made, exist)),
                "held" if (rc == 2 and not made) else "hole")
        ctx.delete_local(c)

        create("6j", "API create with `\"nodes\": null`",
               {"name": ctx.name("6j"), "image": IMAGE, "nodes": None})
    finally:
        for c in clusters:
            if cluster_containers(c):
                ctx.delete_local(c)
        for cid in run_containers_with_marker(ctx.prefix):
            ctx.local("rm", cid, timeout=60)
        if vol:
            ctx.local("volume", "delete", vol, timeout=60)
        d.stop()


# ---------------------------------------------------------------- attack 7

def attack7(ctx):
    """A huge context folder; what an unsigned request learns."""
    d = Daemon(ctx, "a7")
    folder = os.path.join(ctx.work, "ctx500")
    try:
        os.makedirs(os.path.join(folder, "all"), exist_ok=True)
        with open(os.path.join(folder, "all", "10-ok"), "w") as f:
            f.write("#!/bin/sh\ntrue\n")
        os.chmod(os.path.join(folder, "all", "10-ok"), 0o755)
        os.makedirs(os.path.join(folder, "data"), exist_ok=True)
        for i in range(5):  # 5 × 100 MB, sparse: nothing written to disk
            with open(os.path.join(folder, "data", "blob%d" % i), "wb") as f:
                f.truncate(100 * 1000 * 1000)
        c = ctx.name("ctx")
        ctx.ledger("cluster", c)
        timef = os.path.join(ctx.work, "time-7a")
        before = d.rss()
        t = now()
        t_wall = time.time()
        args = [ctx.mcc, "create", "--name", c, "--image", IMAGE, "--nodes", "0", "--context-folder", folder]
        if os.path.exists("/usr/bin/time"):
            args = ["/usr/bin/time", "-f", "%M", "-o", timef] + args
        try:
            p = subprocess.run(args, env=d.env(), capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
            rc, err = p.returncode, p.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired:
            rc, err = 124, "timed out after 300 s"
        took = now() - t
        try:
            cli_rss = int(open(timef).read().split()[-1])
        except (OSError, ValueError, IndexError):
            cli_rss = None
        made = created_since(t_wall, cluster=c)
        ctx.row("7a", "`mcc create --context-folder DIR` (500 MB) through the daemon",
                "exit %d after %.1f s: %s; CLI peak RSS %s, daemon RSS %s → peak %s%s"
                % (rc, took, short(last_line(err), 220), mb(cli_rss), mb(before), mb(d.hwm()),
                   "; made %d containers" % len(made) if made else ""),
                "held" if (rc == 2 and not made and "unauthorized" not in err) else "hole")
        ctx.delete_local(c)

        nope = hreq(d.port, "GET", "/api/v1/nope")
        real = hreq(d.port, "GET", "/api/v1/clusters")
        deep = hreq(d.port, "GET", "/api/v1/clusters/x/nodes/y/nope")
        ctx.row("7b", "unsigned `GET /api/v1/nope` vs unsigned `GET /api/v1/clusters`",
                "nope: %s; real route: %s; `/api/v1/clusters/x/nodes/y/nope`: %s"
                % (nope.what(), real.what(), deep.what()),
                "held" if (nope.status == real.status == deep.status) else "hole")
    finally:
        subprocess.run(["rm", "-rf", folder])
        d.stop()


# ---------------------------------------------------------------- attack 8

def attack8(ctx):
    """The rate limit against its own admin: loadgen plus one CLI cycle, one token."""
    d = Daemon(ctx, "a8")  # default --rate-limit
    c = ctx.name("rl")
    ctx.ledger("cluster", c)
    loadgen = ctx.args.loadgen
    lg = None
    try:
        if not (loadgen and os.access(loadgen, os.X_OK)):
            ctx.row("8", "default `--rate-limit`: `bench/loadgen` on `GET /api/v1/clusters` + a CLI cycle, one token",
                    "set-up failed: no mcc-loadgen binary (%s)" % loadgen, "error")
            return
        seconds = 40
        lg = subprocess.Popen([loadgen, "--connections", "8", "--seconds", str(seconds), "--path", "/api/v1/clusters"],
                              env=d.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        ctx.ledger("process", lg.pid, "loadgen")
        time.sleep(2)
        steps = []
        for what, args in (("create", ["create", "--name", c, "--image", IMAGE, "--nodes", "1"]),
                           ("exec", ["exec", c, "--", "true"]),
                           ("addnode", ["addnode", c, "--count", "1"]),
                           ("delete", ["delete", c])):
            rc, out, err, secs = ctx.run(args, env=d.env(), timeout=90)
            limited = "too many requests" in (err + out).lower()
            why = last_line(err)
            if what == "create" and rc != 0:
                time.sleep(3)
                if nodes_of(cluster_containers(c)):
                    why += "; the daemon made the cluster anyway"
            steps.append((what, rc, limited, secs, why))
        try:
            out, lerr = lg.communicate(timeout=seconds + 30)
            j = json.loads(out.decode().strip().splitlines()[-1])
            load = "loadgen: %s req/s answered 2xx, %s errors (429s among them)" % (
                j.get("requests_per_second"), j.get("errors"))
        except (subprocess.TimeoutExpired, ValueError, IndexError) as e:
            load = "loadgen: no report (%s)" % e.__class__.__name__
        failed = [s for s in steps if s[1] != 0]
        res = "; ".join("%s %s" % (w, "ok (%.1f s)" % secs if rc == 0 else "FAILED exit %d (%s)" % (
            rc, ("too many requests" + ("; the daemon made the cluster anyway" if "anyway" in why else ""))
            if lim else short(why.replace("mcc: error: ", ""), 70)))
            for w, rc, lim, secs, why in steps)
        ctx.row("8", "default `--rate-limit`: `mcc-loadgen` (8 connections) on `GET /api/v1/clusters` and one create/exec/addnode/delete cycle by the CLI, same admin token",
                res + "; " + load, "hole" if failed else "held")
    finally:
        if lg is not None and lg.poll() is None:
            os.killpg(lg.pid, signal.SIGKILL)
            lg.wait()
        if cluster_containers(c):
            ctx.delete_local(c)
        d.stop()


ATTACKS = {1: attack1, 2: attack2, 3: attack3, 4: attack4, 5: attack5, 6: attack6, 7: attack7, 8: attack8}


# ------------------------------------------------------------------ sweep

def sweep(args):
    """Removes everything the ledger names, and whatever carries the prefix."""
    ctx = Ctx(args)
    lines = []
    try:
        lines = [l.split() for l in open(ctx.ledger_path) if l.strip()]
    except OSError:
        pass
    said = []
    for l in lines:
        if l[0] in ("daemon", "process") and len(l) >= 2:
            pid = int(l[1])
            try:
                cmdline = open("/proc/%d/cmdline" % pid, "rb").read()
            except OSError:
                continue
            expect = (l[2].encode() if l[0] == "daemon" else (b"slowloris" if l[2] == "slowloris" else b"loadgen"))
            if expect not in cmdline:
                continue  # the pid was reused by someone else
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    if not os.path.exists("/proc/%d" % pid):
                        break
                    time.sleep(0.1)
                else:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            said.append("%s %d" % (l[0], pid))
    clusters = sorted({l[1] for l in lines if l[0] == "cluster" and len(l) > 1})
    # and any cluster of ours the ledger missed
    rc, out, _ = docker("ps", "-a", "--filter", "label=mcc.cluster", "--format", '{{.Label "mcc.cluster"}}')
    clusters = sorted(set(clusters) | {n for n in out.split() if n.startswith(args.prefix + "-")})
    for c in clusters:
        if cluster_containers(c):
            ctx.delete_local(c)
            said.append("cluster " + c)
        ctx.local("gc", c, timeout=120)
    conts = {l[1] for l in lines if l[0] == "container" and len(l) > 1} | set(run_containers_with_marker(args.prefix))
    for cid in sorted(conts):
        if docker("inspect", "-f", "{{.Id}}", cid)[0] == 0:
            ctx.local("rm", cid, timeout=60)
            said.append("container " + cid[:12])
    for l in lines:
        if l[0] == "vpc" and docker("network", "inspect", l[1])[0] == 0:
            ctx.local("vpc", "delete", l[1], timeout=60)
            said.append("vpc " + l[1])
    vols = {l[1] for l in lines if l[0] == "volume"}
    names = {l[1] for l in lines if l[0] == "volume-name"}
    if names:
        rc, out, _, _ = ctx.local("volume", "list", timeout=60)
        for line in out.splitlines():
            w = line.split()
            if len(w) >= 2 and w[0].startswith("vol-") and any(n in w for n in names):
                vols.add(w[0])
    for v in sorted(vols):
        rc, out, _, _ = ctx.local("volume", "list", timeout=60)
        if v in out:
            ctx.local("volume", "delete", v, timeout=60)
            said.append("volume " + v)
    left = [n for n in docker("ps", "-a", "--filter", "label=mcc.cluster", "--format", '{{.Label "mcc.cluster"}}')[1].split()
            if n.startswith(args.prefix + "-")]
    left += run_containers_with_marker(args.prefix)
    print(json.dumps({"swept": said, "left": left}))
    return 1 if left else 0


# ----------------------------------------------------------------- report

def md_cell(r):
    if not r:
        return "—"
    v = r["verdict"]
    tag = {"hole": "**hole**", "held": "held", "info": "", "error": "*error*"}.get(v, v)
    text = r["result"].replace("|", "\\|").replace("\n", "<br>")
    return ("%s: %s" % (tag, text)) if tag else text


def report(args):
    try:
        data = json.load(open(args.json))
    except (OSError, ValueError):
        data = {"labels": {}, "order": []}
    rows = []
    attacks = {}
    for n in sorted(int(x) for x in args.only.split(",")):
        p = os.path.join(args.rows_dir, "rows-%d.json" % n)
        try:
            j = json.load(open(p))
        except (OSError, ValueError):
            j = {"rows": [{"id": str(n), "attack": "attack %d" % n,
                           "result": "the attack's process left no result", "verdict": "error"}]}
        rows += j["rows"]
        attacks[str(n)] = j.get("meta", {})
    meta = dict(kv.split("=", 1) for kv in args.meta)
    entry = data["labels"].get(args.label, {"rows": [], "attacks": {}, "runs": []})
    done = {str(n) for n in attacks}
    # the runs whose rows are in the table: a later run of the same attacks replaces them
    runs = []
    for r in entry.get("runs", []):
        r["attacks"] = [a for a in r["attacks"] if a not in done]
        if r["attacks"]:
            runs.append(r)
    meta["attacks"] = sorted(done, key=int)
    entry["runs"] = runs + [meta]
    keep = [r for r in entry["rows"] if re.match(r"\d+", r["id"]).group(0) not in done]
    entry["rows"] = sorted(keep + rows, key=lambda r: (int(re.match(r"\d+", r["id"]).group(0)), r["id"]))
    entry["attacks"].update(attacks)
    data["labels"][args.label] = entry
    if args.label not in data["order"]:
        data["order"].append(args.label)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json + ".tmp", "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(args.json + ".tmp", args.json)

    labels = data["order"]
    by = {l: {r["id"]: r for r in data["labels"][l]["rows"]} for l in labels}
    ids = sorted({i for l in labels for i in by[l]}, key=lambda i: (int(re.match(r"\d+", i).group(0)), i))
    out = ["# bench/hostile results: issue 15's attacks on `mcc serve`", ""]
    out.append("Each attack against a fresh `mcc serve --state-dir TMP --listen 127.0.0.1:PORT` (one daemon per "
               "attack), clusters of `%s` on the host's engine; **hole**: the attack got through, held: it was "
               "refused (a 4xx or exit 2 before anything was made or started)." % IMAGE)
    out.append("")
    for l in labels:
        secs = data["labels"][l]["attacks"]
        for m in data["labels"][l]["runs"]:
            out.append("- **%s**%s: %s; `%s`; %s; %s; %s s in all (attack %s s); %s" % (
                l, "" if len(data["labels"][l]["runs"]) == 1 else " (attacks %s)" % ",".join(m["attacks"]),
                m.get("date", "?"), m.get("command", "?"), m.get("binary", "?"), m.get("machine", "?"),
                m.get("seconds", "?"),
                ", ".join("%s: %s" % (k, secs.get(k, {}).get("seconds")) for k in m["attacks"]),
                m.get("leftovers", "")))
    out.append("")
    out.append("| # | attack | " + " | ".join(labels) + " |")
    out.append("|---|---|" + "---|" * len(labels))
    for i in ids:
        attack = next((by[l][i]["attack"] for l in reversed(labels) if i in by[l]), "")
        out.append("| %s | %s | %s |" % (i, attack.replace("|", "\\|"),
                                         " | ".join(md_cell(by[l].get(i)) for l in labels)))
    out.append("")
    for l in labels:
        rs = data["labels"][l]["rows"]
        c = collections.Counter(r["verdict"] for r in rs)
        out.append("%s: %d holes, %d held, %d measures, %d errors." % (
            l, c["hole"], c["held"], c["info"], c["error"]))
    out.append("")
    text = "\n".join(out)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


# ------------------------------------------------------------------- main

def main():
    import argparse
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("attack")
    a.add_argument("n", type=int)
    for s in (a, sub.add_parser("sweep")):
        s.add_argument("--mcc", required=True)
        s.add_argument("--work", required=True)
        s.add_argument("--prefix", required=True)
    a.add_argument("--rows", required=True)
    a.add_argument("--conns", type=int, default=19990)
    a.add_argument("--loadgen")
    r = sub.add_parser("report")
    r.add_argument("--json", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--label", required=True)
    r.add_argument("--rows-dir", required=True)
    r.add_argument("--only", required=True)
    r.add_argument("--meta", action="append", default=[])
    s = sub.add_parser("slowloris")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--conns", type=int, required=True)
    s.add_argument("--seconds", type=float, required=True)
    args = p.parse_args()
    if args.cmd == "slowloris":
        slowloris(args)
        return 0
    if args.cmd == "report":
        report(args)
        return 0
    if args.cmd == "sweep":
        return sweep(args)
    ctx = Ctx(args)
    t = now()
    status = "ok"
    try:
        ATTACKS[args.n](ctx)
    except Exception as e:  # the attack's own failure is a result too
        import traceback
        traceback.print_exc()
        status = "error"
        ctx.row(str(args.n) + ("x" if ctx.rows else ""), "attack %d" % args.n,
                "the attack failed: %s" % short(e, 200), "error")
    finally:
        for d in ctx.daemons:
            try:
                d.stop()
            except Exception:
                pass
    with open(args.rows, "w") as f:
        json.dump({"rows": ctx.rows, "meta": {"seconds": round(now() - t), "status": status}}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

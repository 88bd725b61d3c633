"""Schemathesis hooks for scripts/fuzz-api: sign every request to mcc serve,
and steer some generated bodies towards what this engine can run.

Loaded with SCHEMATHESIS_HOOKS=mcc_hooks (this folder and examples/api on
PYTHONPATH). The signature covers the method, the path and query as sent and
the body's bytes as sent (README.md, "Signing"), so it is made on the
`requests.PreparedRequest` itself, the last thing before the wire, through a
`requests` auth object: schemathesis calls it after serializing the case,
for every request it sends (retries included, each with a fresh nonce).

Cases whose security is negated on purpose (a missing x-mcc-access-token)
are left unsigned by schemathesis: they test the daemon's refusal.
"""

import hashlib
import os
import re

import requests.auth
import schemathesis

# examples/api/mcc_client.py: the reference signer, so that the fuzzer
# checks the daemon against the documented signature, not a second copy.
from mcc_client import sign


class MccSignature(requests.auth.AuthBase):
    def __init__(self, token, secret):
        self.token = token
        self.secret = secret

    def __call__(self, r):
        body = r.body
        if body is None:
            body = b""
        elif isinstance(body, str):
            # what is signed must be what is sent: bytes, set here
            body = body.encode("utf-8")
            r.body = body
            r.prepare_content_length(body)
        elif not isinstance(body, bytes):
            body = b"".join(part if isinstance(part, bytes) else part.encode() for part in body)
            r.body = body
            r.prepare_content_length(body)
        # path_url is the request target: the path and '?query' as sent
        for name, value in sign(r.method, r.path_url, body, self.token, self.secret).items():
            r.headers[name] = value
        return r


schemathesis.auth.set_from_requests(
    MccSignature(os.environ["MCC_ACCESS_TOKEN"], os.environ["MCC_SECRET_KEY"])
)


# --- steering -----------------------------------------------------------------
# Random image names never exist here (no registry) and random names are
# rarely DNS labels: nearly every create would stop at the first check, and
# the stateful phase would never reach a cluster, service or container to
# list, stop, scale or delete, nor check those answers. So half the bodies
# (a coin from the body's own hash: the same body always maps alike) name
# the one image the private engine has (FUZZ_API_IMAGE) and a name that is a
# DNS label; and counts are kept small (at most 4 nodes, replicas or new
# nodes), for a 2-core machine. The rest stay as generated; no check changes.

IMAGE = os.environ.get("FUZZ_API_IMAGE", "mcc-test/busybox:latest")
IMAGE_FIELDS = ("image", "front-end-image", "working-node-image")
COUNT_FIELDS = ("nodes", "replicas", "count")
# the creates that need an image (a body without one stops there)
NEED_IMAGE = {
    ("POST", "/api/v1/clusters"),
    ("POST", "/api/v1/containers"),
    ("POST", "/api/v1/clusters/{name}/services"),
    ("POST", "/api/v1/service"),
}
LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$")


@schemathesis.hook
def map_body(context, body):
    if not isinstance(body, dict):
        return body
    digest = hashlib.sha256(repr(sorted(body.items(), key=lambda kv: str(kv[0]))).encode()).hexdigest()
    body = dict(body)
    if int(digest[0], 16) % 2 == 0:
        for field in IMAGE_FIELDS:
            if field in body and (body[field] is None or isinstance(body[field], str)):
                body[field] = IMAGE
        operation = getattr(context, "operation", None)
        if operation is not None and (operation.method.upper(), operation.path) in NEED_IMAGE:
            body.setdefault("image", IMAGE)
        name = body.get("name")
        if isinstance(name, str) and not LABEL.match(name):
            body["name"] = "fz-" + digest[1:9]
    for field in COUNT_FIELDS:
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 4:
            body[field] = 1 + value % 4
    return body


# GET /api/v1/events follows the log by default: a stream that stays open
# for new events, which no bounded request can read to its end. An
# operation followed (`follow=true`) streams until it ends, which for an
# operation the fuzzer started (a create, say) can be later than the
# fuzzer's 5 s request timeout. The fuzzer reads both as
# they are (follow=false); following is tested in tests/api.rs, and every
# CLI command of scripts/test-remote follows its operation.
FOLLOWED_FOREVER = {("GET", "/api/v1/events"), ("GET", "/api/v1/operations/{id}")}


@schemathesis.hook
def before_call(context, case, **kwargs):
    # every phase (the coverage phase too, which maps no query)
    if (case.operation.method.upper(), case.operation.path) in FOLLOWED_FOREVER:
        query = dict(case.query or {})
        query["follow"] = "false"
        case.query = query

#!/usr/bin/env python3
"""A reference client of the mcc daemon's API, with Python's standard library only.

Every /api request carries four headers:

  x-mcc-access-token  the access token
  x-mcc-timestamp     Unix time in seconds (the daemon accepts 5 minutes either way)
  x-mcc-nonce         16 to 64 characters of [A-Za-z0-9_-], never used twice
  x-mcc-signature     lowercase hex HMAC-SHA256, keyed with the secret key, of

      MCC-HMAC-SHA256 \\n METHOD \\n PATH \\n QUERY \\n TIMESTAMP \\n NONCE \\n hex(SHA-256(body))

  (one line each, joined by newlines, no spaces): METHOD in capitals, PATH and
  QUERY as sent (QUERY without its '?', empty if none), the body's hash even
  when the body is empty.

Usage:
  python3 mcc_client.py METHOD PATH [JSON]     e.g. GET /api/v1/clusters
  python3 mcc_client.py --self-test

It reads MCC_ENDPOINT_URL, MCC_ACCESS_TOKEN and MCC_SECRET_KEY (as written by
`mcc serve` in its state directory's credentials file), prints the answer's
body, and exits 1 when the daemon answers 4xx or 5xx.
"""

import hashlib
import hmac
import os
import secrets
import sys
import time
import urllib.error
import urllib.request

SCHEME = "MCC-HMAC-SHA256"


def canonical(method, path_with_query, timestamp, nonce, body_bytes):
    path, _, query = path_with_query.partition("?")
    return "\n".join([
        SCHEME,
        method.upper(),
        path,
        query,
        str(timestamp),
        nonce,
        hashlib.sha256(body_bytes).hexdigest(),
    ])


def sign(method, path_with_query, body_bytes, token, secret, timestamp=None, nonce=None):
    """The headers that sign one request (a fresh nonce and the time now by default)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = secrets.token_hex(16) if nonce is None else nonce
    text = canonical(method, path_with_query, timestamp, nonce, body_bytes)
    signature = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return {
        "x-mcc-access-token": token,
        "x-mcc-timestamp": str(timestamp),
        "x-mcc-nonce": nonce,
        "x-mcc-signature": signature,
    }


# How long, in all, request() waits for its turn when the daemon answers
# 429 (over the token's rate limit: nothing was done, so sending it again is
# safe).
RETRY_FOR = 120


def request(method, path_with_query, body_bytes=b""):
    """Sends one signed request; (status, body bytes).

    A 429 answer is sent again, freshly signed, after the Retry-After the
    daemon gave (saying so on stderr), for up to RETRY_FOR seconds in all.
    """
    url = os.environ.get("MCC_ENDPOINT_URL") or os.environ.get("CC_ENDPOINT_URL")
    token = os.environ.get("MCC_ACCESS_TOKEN") or os.environ.get("CC_ACCESS_TOKEN")
    secret = os.environ.get("MCC_SECRET_KEY") or os.environ.get("CC_SECRET_KEY")
    if not (url and token and secret):
        sys.exit("mcc_client: set MCC_ENDPOINT_URL, MCC_ACCESS_TOKEN and MCC_SECRET_KEY "
                 "(e.g. `. /var/lib/mcc/credentials` as root)")
    waited = 0
    while True:
        status, headers, data = _send(url, token, secret, method, path_with_query, body_bytes)
        if status != 429:
            return status, data
        try:
            wait = min(max(int(headers.get("retry-after", "1")), 1), 30)
        except ValueError:
            wait = 1
        if waited + wait > RETRY_FOR:
            return status, data
        sys.stderr.write("mcc_client: at this token's rate limit (429); trying again in %ds\n"
                         % wait)
        time.sleep(wait)
        waited += wait


def _send(url, token, secret, method, path_with_query, body_bytes):
    headers = sign(method, path_with_query, body_bytes, token, secret)
    if body_bytes:
        headers["content-type"] = "application/json"
    req = urllib.request.Request(url.rstrip("/") + path_with_query, data=body_bytes or None,
                                 headers=headers, method=method.upper())
    try:
        with urllib.request.urlopen(req) as res:
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def self_test():
    got = sign("post", "/api/v1/clusters?x=1", b"{}", "mcc_test", "s3cret",
               timestamp=1700000000, nonce="0123456789abcdef")
    want = "a21f24aa0fec665a0830d8a0a3093f0bca9c7f73e8136654a733bffc8c128e1a"
    if got["x-mcc-signature"] != want:
        sys.exit("self-test failed: %s != %s" % (got["x-mcc-signature"], want))
    print("self-test ok")


def main(argv):
    if argv[1:] == ["--self-test"]:
        self_test()
        return 0
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    method, path = argv[1], argv[2]
    body = argv[3].encode() if len(argv) == 4 else b""
    status, data = request(method, path, body)
    sys.stdout.write(data.decode(errors="replace"))
    if data and not data.endswith(b"\n"):
        sys.stdout.write("\n")
    return 1 if status >= 400 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

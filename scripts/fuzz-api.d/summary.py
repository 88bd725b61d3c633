#!/usr/bin/env python3
"""What a schemathesis run of scripts/fuzz-api found, from its NDJSON report.

Usage: summary.py REPORT.ndjson OPENAPI.json [DISTINCT.json]

Prints the test cases sent, the operations covered (of those in the
document), the failures by check, the errors, and each distinct failure
once (operation, check, what was wrong) with one request that shows it.
Writes the distinct failures as JSON to DISTINCT.json if given. Exits 1 if
anything failed or errored, 0 otherwise.
"""

import base64
import json
import re
import sys
from collections import Counter, defaultdict
from urllib.parse import urlsplit

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def decode(payload):
    """A recorded body (maybe {"$base64": …}) as text, or None."""
    if payload is None:
        return None
    if isinstance(payload, dict) and "$base64" in payload:
        raw = base64.b64decode(payload["$base64"])
        return raw.decode("utf-8", errors="replace")
    if isinstance(payload, (dict, list)):
        return json.dumps(payload)
    return str(payload)


def short(text, limit):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def what_was_wrong(check, failure, status):
    """The part of a failure that tells one kind from another (no values
    that change from case to case, like a generated name)."""
    title = failure.get("title", "")
    message = failure.get("message", "")
    if check == "status_code_conformance":
        # "Received: 401\nDocumented: 200, 404"
        return f"{title}: {status} (documented: {message.partition('Documented: ')[2].strip()})"
    if check == "response_schema_conformance":
        # the first line says what broke; the schema path says where
        lines = [l.strip() for l in message.splitlines() if l.strip()]
        where = next((l for l in lines if l.startswith("Schema at ")), "")
        first = re.sub(r"'[^']*'|\"[^\"]*\"|\b\d+\b", "…", lines[0]) if lines else ""
        return f"{title}: {status}: {first} {where}".strip()
    if check == "content_type_conformance":
        return f"{title}: {status}: {short(message, 160)}"
    return f"{title}: {status}"


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    report, openapi = argv[1], argv[2]
    with open(openapi) as f:
        doc = json.load(f)
    documented = {
        f"{m.upper()} {p}" for p, ops in doc.get("paths", {}).items() for m in ops if m in METHODS
    }

    cases_sent = set()
    covered = set()
    per_check = Counter()  # check -> failing cases
    check_runs = Counter()  # check -> cases checked
    distinct = {}  # key -> record
    distinct_count = defaultdict(int)
    errors = []
    scenarios = 0
    phases = Counter()

    with open(report) as f:
        for line in f:
            event = json.loads(line)
            if "NonFatalError" in event:
                e = event["NonFatalError"]
                value = e.get("value", {})
                errors.append(
                    (e.get("label", "?"), e.get("phase", "?"), value.get("type", "?"), value.get("message", ""))
                )
                continue
            if "ScenarioFinished" not in event:
                continue
            scenario = event["ScenarioFinished"]
            scenarios += 1
            recorder = scenario.get("recorder", {})
            interactions = recorder.get("interactions", {})
            cases = recorder.get("cases", {})
            for case_id, inter in interactions.items():
                cases_sent.add(case_id)
                phases[scenario.get("phase", "?")] += 1
                label = cases.get(case_id, {}).get("value", {})
                label = f"{label.get('method', '?')} {label.get('path', '?')}" if label else recorder.get("label")
                covered.add(label)
            for case_id, checks in recorder.get("checks", {}).items():
                case = cases.get(case_id, {}).get("value", {})
                label = f"{case.get('method', '?')} {case.get('path', '?')}" if case else recorder.get("label", "?")
                inter = interactions.get(case_id, {})
                request = inter.get("request", {})
                response = inter.get("response") or {}
                status = response.get("status_code", "-")
                for c in checks:
                    check_runs[c["name"]] += 1
                    if c["status"] != "failure":
                        continue
                    per_check[c["name"]] += 1
                    failure = (c.get("failure_info") or {}).get("failure", {})
                    wrong = what_was_wrong(c["name"], failure, status)
                    key = (label, c["name"], wrong)
                    distinct_count[key] += 1
                    if key in distinct:
                        continue
                    uri = urlsplit(request.get("uri", ""))
                    target = uri.path + (f"?{uri.query}" if uri.query else "")
                    headers = {k.lower() for k in request.get("headers", {})}
                    distinct[key] = {
                        "operation": label,
                        "check": c["name"],
                        "what": wrong,
                        "message": failure.get("message", ""),
                        "request": {
                            "method": request.get("method", case.get("method", "?")),
                            "target": target,
                            "signed": "x-mcc-signature" in headers,
                            "body": decode(request.get("body")),
                        },
                        "response": {
                            "status": status,
                            "content-type": ",".join(response.get("headers", {}).get("content-type", [])),
                            "body": decode(response.get("content")),
                        },
                        "phase": scenario.get("phase"),
                    }

    total_fail = sum(per_check.values())
    print(f"fuzz-api: {len(cases_sent)} test cases sent in {scenarios} scenarios "
          f"({', '.join(f'{p} {n}' for p, n in sorted(phases.items()))})")
    in_doc = covered & documented
    print(f"fuzz-api: {len(in_doc)} of {len(documented)} documented operations covered")
    missing = sorted(documented - covered)
    if missing:
        print("  not covered: " + ", ".join(missing))
    print("fuzz-api: failures by check (failing cases / cases checked, distinct failures):")
    for check in sorted(check_runs):
        kinds = sum(1 for k in distinct if k[1] == check)
        print(f"  {check}: {per_check[check]} / {check_runs[check]}, {kinds} distinct")
    if errors:
        print(f"fuzz-api: {len(errors)} errors (a request that got no answer, or a schemathesis error):")
        for label, phase, kind, message in sorted(set(errors)):
            print(f"  {label} ({phase}): {kind}: {short(message, 200)}")
    if distinct:
        # one group per check and answer (e.g. "401 not documented"), with
        # the operations it was seen on and one request that shows it
        groups = defaultdict(list)
        for key, d in sorted(distinct.items(), key=lambda kv: kv[0]):
            if d["check"] == "status_code_conformance":
                group = (d["check"], f"status {d['response']['status']} not documented")
            else:
                group = (d["check"], d["what"])
            groups[group].append((key, d))
        print(f"fuzz-api: {len(distinct)} distinct failures (operation, check, what was wrong), "
              f"in {len(groups)} groups; one request each:")
        for i, ((check, what), members) in enumerate(sorted(groups.items()), 1):
            cases = sum(distinct_count[k] for k, _ in members)
            print(f"{i:3}. {check}: {what}: {len(members)} operations, {cases} cases")
            for key, d in members:
                r, a = d["request"], d["response"]
                documented = d["what"].partition("(documented: ")[2].rstrip(")")
                if check == "status_code_conformance":
                    extra = f" (documented: {documented})"
                else:
                    extra = ""
                body = f" body {short(r['body'], 200)}" if r["body"] else ""
                answer = short(a["body"] or "", 200)
                print(f"       {d['operation']}{extra}")
                print(f"         {r['method']} {short(r['target'], 160)} "
                      f"({'signed' if r['signed'] else 'unsigned'}){body}")
                print(f"         -> {a['status']} {a['content-type']} {answer}")
    if len(argv) == 4:
        with open(argv[3], "w") as f:
            json.dump(list(distinct.values()), f, indent=1)
    return 1 if total_fail or errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

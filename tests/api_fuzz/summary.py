"""Summarises schemathesis's NDJSON reports: the statuses each operation answered.

    python summary.py REPORT_DIR [--details OPERATION_LABEL]

Prints, per documented operation (METHOD /path), how many requests the fuzzer sent and the
statuses they got. Exits 1 when an operation that ran never answered a success (2xx, a
console form's 303 onward, or the 501 documented for /Me): then the credentials, the tenant or the seed data did not work
and the run tested only the rejection paths, which would pass vacuously. The operations that
exclusions.toml lets go without a success are its [[may_never_succeed]] entries.
"""

from __future__ import annotations

import base64
import collections
import json
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def interactions(report_dir: Path):
    for path in sorted(report_dir.rglob("*.ndjson")):
        with path.open(encoding="utf-8") as fd:
            for line in fd:
                event = json.loads(line)
                finished = event.get("ScenarioFinished")
                if not finished:
                    continue
                recorder = finished["recorder"]
                label = recorder["label"]
                for case_id, interaction in recorder.get("interactions", {}).items():
                    case = recorder["cases"].get(case_id, {}).get("value", {})
                    yield finished["phase"], label, case, interaction


def body_text(message: dict) -> str:
    content = message.get("content") or message.get("body") or {}
    if "$base64" in content:
        return base64.b64decode(content["$base64"]).decode(errors="replace")
    return content.get("string", "")


def redirect_kind(response: dict) -> str:
    """A console 303: to the sign-in page (signed out, or signing out), or onward (done)."""
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    location = headers.get("location") or [""]
    location = location[0] if isinstance(location, list) else location
    return "(to sign-in)" if location == "/console/" else "(done)"


def succeeded(label: str, status) -> bool:
    """Whether an answer is an operation's success: a 2xx or 304; a console form's 303
    onward (its sign-out's, to the sign-in page)."""
    if isinstance(status, int):
        return 200 <= status < 300 or status == 304
    if label.endswith("/console/sign-out"):
        return status == "303 (to sign-in)"
    return status == "303 (done)"


def main() -> None:
    report_dir = Path(sys.argv[1])
    details = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--details" else None
    stats: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    documented = set()
    for phase, label, case, interaction in interactions(report_dir):
        if label.split(" ", 1)[0] in METHODS:
            documented.add(label)
    for phase, label, case, interaction in interactions(report_dir):
        response = interaction.get("response")
        status = response["status_code"] if response else "error"
        # The case names its operation's path template (the stateful phase's scenario label
        # does not); the coverage phase also sends undocumented methods to each path, which
        # are counted apart.
        method = interaction["request"]["method"]
        template = case.get("path") or label.split(" ", 1)[1]
        label = f"{method} {template}"
        if method not in METHODS or label not in documented:
            label = "(undocumented methods on documented paths, all together)"
        if status == 303 and template.startswith("/console/"):
            status = f"303 {redirect_kind(response)}"
        stats[label][status] += 1
        if details and label == details:
            request = interaction["request"]
            print(f"[{phase}] {request['method']} {request['uri']} -> {status}")
            print(f"   > {body_text(request)[:300]}")
            print(f"   < {body_text(response or {})[:300]}")
    if details:
        return
    allowed = {
        entry["operation"]
        for entry in tomllib.loads((HERE / "exclusions.toml").read_text(encoding="utf-8")).get(
            "may_never_succeed", []
        )
    }
    missing = []
    print(f"{'operation':58} {'requests':>8}  statuses")
    for label in sorted(stats):
        counter = stats[label]
        total = sum(counter.values())
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(counter.items(), key=lambda kv: str(kv[0])))
        print(f"{label:58} {total:8}  {shown}")
        if label.startswith("(undocumented"):
            continue
        ok = any(succeeded(label, s) for s in counter)
        if label.endswith("/Me"):
            ok = 501 in counter
        if not ok and label not in allowed:
            missing.append(label)
    if missing:
        print("api-fuzz: these operations never answered a success, so the run only reached their "
              "rejections (credentials, tenant or seed data not working?):", file=sys.stderr)
        for label in missing:
            print(f"  {label}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Runs scim2-tester against a live SCIM server and judges its results.

Usage (scripts/conformance does all of this against a fresh scimbus):

    SCIM2_TESTER_URL=http://127.0.0.1:8080/scim/v2/acme \
    SCIM2_TESTER_TOKEN=scimbus_t_... \
    python run.py

Every check is printed with its status. A check fails when scim2-tester reports it as
ERROR, CRITICAL or DEVIATION. A failure may be excused only by an entry of
exclusions.toml (beside this file) that quotes the RFC 7643/7644 text showing the tester
is wrong; an excused check is still printed, as EXCLUDED, with its quote. The last line
is `N passed, M failed`, where M counts the failures no exclusion covers; the exit status
is 1 when M > 0 (or when nothing passed), 2 on a usage or configuration error.
SCIM2_TESTER_EXCLUSIONS names another exclusion file (to try an entry out);
SCIM2_TESTER_TRACE=1 prints every request and response to stderr as they happen.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EXCLUSIONS_FILE = Path(os.environ.get("SCIM2_TESTER_EXCLUSIONS", HERE / "exclusions.toml"))

PASSED = {"SUCCESS", "COMPLIANT", "ACCEPTABLE"}
FAILED = {"ERROR", "CRITICAL", "DEVIATION"}
SKIPPED = {"SKIPPED"}
# Longest debugging payload printed for one failed check.
MAX_DATA_CHARS = 4000


@dataclass
class Exclusion:
    check: str
    resource_type: str | None
    reason_contains: str | None
    rfc: str
    quote: str
    why: str
    used: int = 0

    def matches(self, title: str, resource_type: str | None, reason: str) -> bool:
        if self.check != title:
            return False
        if self.resource_type is not None and self.resource_type != resource_type:
            return False
        if self.reason_contains is not None and self.reason_contains not in reason:
            return False
        return True

    def label(self) -> str:
        parts = [self.check]
        if self.resource_type:
            parts.append(f"resource_type={self.resource_type}")
        if self.reason_contains:
            parts.append(f"reason~{self.reason_contains!r}")
        return " ".join(parts)


def die(message: str) -> None:
    print(f"run.py: {message}", file=sys.stderr)
    sys.exit(2)


def load_exclusions(path: Path) -> list[Exclusion]:
    """Reads the exclusion list; an entry without an RFC 7643/7644 quote is refused."""
    if not path.exists():
        return []
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        die(f"{path.name}: {exc}")
    entries = doc.get("exclusion", [])
    if not isinstance(entries, list):
        die(f"{path.name}: `exclusion` must be an array of tables ([[exclusion]])")
    unknown_top = set(doc) - {"exclusion"}
    if unknown_top:
        die(f"{path.name}: unknown top-level keys {sorted(unknown_top)}")
    allowed = {"check", "resource_type", "reason_contains", "rfc", "quote", "why"}
    exclusions = []
    for i, entry in enumerate(entries, 1):
        where = f"{path.name}: exclusion #{i}"
        unknown = set(entry) - allowed
        if unknown:
            die(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("check", "rfc", "quote", "why"):
            value = entry.get(key)
            if not isinstance(value, str) or not value.strip():
                die(f"{where}: `{key}` is required and must be a non-empty string")
        if "RFC 7643" not in entry["rfc"] and "RFC 7644" not in entry["rfc"]:
            die(f"{where}: `rfc` must cite RFC 7643 or RFC 7644 (e.g. 'RFC 7644 §3.5.2')")
        if len(entry["quote"].strip()) < 20:
            die(f"{where}: `quote` must quote the RFC text, not summarise it")
        exclusions.append(
            Exclusion(
                check=entry["check"],
                resource_type=entry.get("resource_type"),
                reason_contains=entry.get("reason_contains"),
                rfc=entry["rfc"],
                quote=" ".join(entry["quote"].split()),
                why=" ".join(entry["why"].split()),
            )
        )
    return exclusions


def render_data(data: Any) -> str:
    """A readable, bounded form of the debugging data a check attached."""
    if data is None:
        return ""
    try:
        if hasattr(data, "model_dump"):
            data = data.model_dump(mode="json", exclude_none=True)
        text = json.dumps(data, indent=2, default=_json_default, ensure_ascii=False)
    except Exception:  # noqa: BLE001 - debugging output must never break the run
        text = repr(data)
    if len(text) > MAX_DATA_CHARS:
        text = text[:MAX_DATA_CHARS] + f"\n… ({len(text) - MAX_DATA_CHARS} more characters)"
    return text


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, BaseException):
        cause = f" (cause: {value.__cause__!r})" if value.__cause__ else ""
        return f"{type(value).__name__}: {value}{cause}"
    return repr(value)


def trace_exchange(response: Any) -> None:
    """Prints one request and its response (SCIM2_TESTER_TRACE=1), before the results."""
    request = response.request
    body = request.content.decode(errors="replace") if request.content else ""
    response.read()
    print(f"> {request.method} {request.url} {body}".rstrip(), file=sys.stderr)
    print(f"< {response.status_code} {response.text}".rstrip(), file=sys.stderr)


def indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def main() -> int:
    base_url = os.environ.get("SCIM2_TESTER_URL", "").rstrip("/")
    token = os.environ.get("SCIM2_TESTER_TOKEN", "")
    if not base_url or not token:
        die("set SCIM2_TESTER_URL (the SCIM base URL) and SCIM2_TESTER_TOKEN (a bearer token)")
    timeout = float(os.environ.get("SCIM2_TESTER_HTTP_TIMEOUT", "30"))

    exclusions = load_exclusions(EXCLUSIONS_FILE)

    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import Status, check_server

    hooks = {}
    if os.environ.get("SCIM2_TESTER_TRACE") == "1":
        hooks = {"response": [trace_exchange]}
    http = Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
        event_hooks=hooks,
    )
    scim = SyncSCIMClient(http)
    print(f"scim2-tester against {base_url}", flush=True)
    try:
        results = check_server(scim, raise_exceptions=False)
    except Exception as exc:  # noqa: BLE001 - report it as a failed run, with its cause
        print(f"FAILED  check_server raised {type(exc).__name__}: {exc}")
        print("0 passed, 1 failed")
        return 1
    finally:
        http.close()

    passed = failed = excluded = skipped = 0
    failures: list[str] = []
    for result in results:
        status = result.status.name if isinstance(result.status, Status) else str(result.status)
        title = result.title or "<untitled>"
        reason = (result.reason or "").strip()
        label = f"[{result.resource_type}] {title}" if result.resource_type else title
        first_line = reason.splitlines()[0] if reason else ""

        if status in FAILED:
            match = next(
                (e for e in exclusions if e.matches(title, result.resource_type, reason)), None
            )
            if match is not None:
                match.used += 1
                excluded += 1
                print(f"EXCLUDED  {label}: {status}: {first_line}")
                print(f"      {match.rfc}: \"{match.quote}\"")
                print(f"      why the tester is wrong: {match.why}")
                continue
            failed += 1
            failures.append(label)
            print(f"FAILED    {label}: {status}")
            if reason:
                print(indent(reason))
            data = render_data(result.data)
            if data:
                print(indent("data: " + data))
        elif status in PASSED:
            passed += 1
            print(f"PASSED    {label}: {first_line}" if first_line else f"PASSED    {label}")
        elif status in SKIPPED:
            skipped += 1
            print(f"SKIPPED   {label}: {first_line}")
        else:
            failed += 1
            failures.append(label)
            print(f"FAILED    {label}: unknown status {status}: {first_line}")

    for exclusion in exclusions:
        if not exclusion.used:
            print(f"note: exclusion matched no failed check (stale?): {exclusion.label()}")

    print()
    if failures:
        print("failed checks:")
        for label in failures:
            print(f"  {label}")
    print(f"scim2-tester: {len(results)} results, {excluded} excluded, {skipped} skipped")
    if passed == 0 and failed == 0:
        # A run that checked nothing proves nothing.
        failed = 1
        print("run.py: no check passed or failed", file=sys.stderr)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""schemathesis hooks for scripts/api-fuzz: the `inputs` and `failures` exclusions.

exclusions.toml names, for each such exclusion, one of the predicates below and the
operations (operationIds) it applies to; nothing here acts on an operation that no
exclusion lists. An `inputs` predicate drops generated requests before they are sent (for
requests that crash the server, which no check can excuse); a `failures` predicate drops a
check's failure after the response came. Every dropped request and failure is counted, and
run.py prints the counts, so an exclusion that stopped matching anything shows up.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import schemathesis

HERE = Path(__file__).resolve().parent
COUNTS_FILE = os.environ.get("SCIMBUS_FUZZ_EXCLUSION_COUNTS")


def _count(exclusion_id: str) -> None:
    """Adds one to the exclusion's count in SCIMBUS_FUZZ_EXCLUSION_COUNTS (a JSON object)."""
    if not COUNTS_FILE:
        return
    path = Path(COUNTS_FILE)
    counts = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    counts[exclusion_id] = counts.get(exclusion_id, 0) + 1
    path.write_text(json.dumps(counts), encoding="utf-8")


# --- predicates ----------------------------------------------------------------------------

# The byte offsets the server slices attribute names at: "urn:" and the URNs of the schemas
# it compares a name's prefix with.
SLICE_OFFSETS = {4} | {
    len(urn)
    for urn in (
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    )
}


def _slices_mid_char(name: Any) -> bool:
    """Whether slicing `name`, as sent or trimmed of white space (the server trims some
    names), at one of SLICE_OFFSETS bytes would cut a UTF-8 character."""
    if not isinstance(name, str) or name.isascii():
        return False
    for candidate in {name, name.strip()}:
        data = candidate.encode("utf-8", "surrogatepass")
        # A byte 0b10xxxxxx continues a character: an offset landing on one is mid-character.
        if any(n < len(data) and (data[n] & 0xC0) == 0x80 for n in SLICE_OFFSETS):
            return True
    return False


def _any_key_slices_mid_char(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_slices_mid_char(k) or _any_key_slices_mid_char(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_any_key_slices_mid_char(v) for v in value)
    return False


def attribute_name_sliced_mid_char(case) -> bool:
    """An attribute name that the server's byte-offset slicing would cut inside a UTF-8
    character: an item of `attributes`/`excludedAttributes` (query, comma-separated, or
    SearchRequest body), or any key of a JSON body."""
    query = case.query or {}
    for name in ("attributes", "excludedAttributes"):
        value = query.get(name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and any(_slices_mid_char(p) for p in item.split(",")):
                return True
    body = case.body
    if isinstance(body, dict):
        for name in ("attributes", "excludedAttributes"):
            value = body.get(name)
            if isinstance(value, list) and any(_slices_mid_char(v) for v in value):
                return True
    return _any_key_slices_mid_char(body)


def _numbers(value: Any):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)


F64_MAX = 1.7976931348623157e308


def near_f64_max_number(case) -> bool:
    """A JSON number in the body within 0.001% below the largest double (a larger one is
    refused as out of range when the body is parsed, rightly with 400)."""
    if not isinstance(case.body, (dict, list)):
        return False
    # int/float comparisons are exact in Python, also for ints past the float range.
    return any(1.79768e308 <= abs(n) <= F64_MAX for n in _numbers(case.body))


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def nul_in_body(case) -> bool:
    """A NUL character (U+0000) in any string or key of the JSON body."""
    return _has_nul(case.body) if isinstance(case.body, (dict, list, str)) else False


def projected_resource_lacks_required(failure, case, response) -> bool:
    """The response body fails the User/Group schema only for lacking `userName` or
    `displayName`, and the request asked for a projection (`attributes` or
    `excludedAttributes`), which RFC 7644 §3.9 lets drop them."""
    query = case.query or {}
    if "attributes" not in query and "excludedAttributes" not in query:
        return False
    message = getattr(failure, "message", "") or ""
    return failure.code == "ST108" and (
        '"userName" is a required property' in message
        or '"displayName" is a required property' in message
    )


def auth_status_undocumented(failure, case, response) -> bool:
    """An undocumented-status failure for a 401 or 403: the operation documents no error
    response, but authentication runs first on every route."""
    return failure.code == "ST103" and response.status_code in (401, 403)


def me_501_for_any_method(failure, case, response) -> bool:
    """A server-error failure for 501 on /Me, which answers 501 whatever the method."""
    return failure.code == "ST101" and response.status_code == 501 and case.path.endswith("/Me")


INPUTS = {
    "attribute_name_sliced_mid_char": attribute_name_sliced_mid_char,
    "near_f64_max_number": near_f64_max_number,
    "nul_in_body": nul_in_body,
}
FAILURES = {
    "projected_resource_lacks_required": projected_resource_lacks_required,
    "auth_status_undocumented": auth_status_undocumented,
    "me_501_for_any_method": me_501_for_any_method,
}


# --- wiring --------------------------------------------------------------------------------

def _load() -> tuple[list[tuple[str, set[str], Any]], list[tuple[str, set[str], Any]]]:
    data = tomllib.loads((HERE / "exclusions.toml").read_text(encoding="utf-8"))
    inputs, failures = [], []
    for entry in data.get("exclusion", []):
        kind = entry.get("kind")
        if kind not in ("inputs", "failures"):
            continue
        table = INPUTS if kind == "inputs" else FAILURES
        if entry.get("match") not in table:
            raise ValueError(f"exclusions.toml: {entry.get('id')}: unknown {kind} predicate {entry.get('match')!r}")
        target = (inputs if kind == "inputs" else failures)
        target.append((entry["id"], set(entry["operations"]), table[entry["match"]]))
    return inputs, failures


INPUT_EXCLUSIONS, FAILURE_EXCLUSIONS = _load()


def _operation_id(case) -> str | None:
    try:
        return case.operation.definition.raw.get("operationId")
    except AttributeError:
        return None


@schemathesis.hook
def filter_case(context, case) -> bool:
    op = _operation_id(case)
    for exclusion_id, operations, predicate in INPUT_EXCLUSIONS:
        if op in operations and predicate(case):
            _count(exclusion_id)
            return False
    return True


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    op = _operation_id(case)
    for exclusion_id, operations, predicate in FAILURE_EXCLUSIONS:
        if op in operations and predicate(failure, case, response):
            _count(exclusion_id)
            return False
    return True

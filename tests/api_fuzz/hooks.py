"""schemathesis hooks for scripts/api-fuzz: the `inputs` and `failures` exclusions, and
the operator console's session.

exclusions.toml names, for each such exclusion, one of the predicates below and the
operations (operationIds) it applies to; nothing here acts on an operation that no
exclusion lists. An `inputs` predicate drops generated requests before they are sent (for
requests that crash the server, which no check can excuse); a `failures` predicate drops a
check's failure after the response came. Every dropped request and failure is counted, and
run.py prints the counts, so an exclusion that stopped matching anything shows up.

The console pass (operations under /console/) authenticates as a browser does: the session
cookie provision.py got by signing in (schemathesis.toml's auth; the live session's when a
sign-out ended it), and the console's own origin on every form. A form whose `csrf` is the session's token (the `console_csrf` dictionary)
carries the live session's token; other values are forgeries, which the console refuses. When
the fuzzer's sign-out ends the session, the next console request signs in again.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import schemathesis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import console_session  # noqa: E402 - beside this file, which schemathesis loads by path
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


def _declared_query_parameters(case) -> set[str]:  # noqa: D103
    try:
        raw = case.operation.definition.raw
    except AttributeError:
        return set()
    return {p.get("name") for p in raw.get("parameters", []) if p.get("in") == "query"}


# Parameters schemathesis.toml pins to one value (exclusions.toml, restrictions): a case
# whose only mutations are of these is sent with the pinned, valid value.
PINNED = {"tenant", "slug", "wait", "Authorization"}


def _ignored_mutation(mutation, case) -> bool:
    location = getattr(getattr(mutation, "parameter_location", None), "value", "")
    keywords = set(getattr(mutation, "keywords", ()) or ())
    parameter = getattr(mutation, "parameter", None)
    if parameter in PINNED:
        return True
    # The stateful phase sets a parameter from an earlier response after generation: the
    # mutated value was never sent.
    new = getattr(mutation, "new_value", None)
    sent = {"query": case.query, "path": case.path_parameters}.get(location) or {}
    if parameter in sent and new is not None and str(sent[parameter]) != str(new):
        return True
    path = getattr(mutation, "path", ()) or ()
    if location == "body" and any(p in PINNED for p in path):
        return True
    # Undeclared query parameters and header fields: ignored by design (DESIGN 4; RFC 9110
    # §5.1: a recipient ignores unrecognized header fields).
    return location in ("query", "header") and "additionalProperties" in keywords


def mutation_not_sent_or_ignored(failure, case, response) -> bool:
    """A schema-violating request accepted whose every mutation is of a pinned parameter
    (sent with its pinned, valid value) or adds a query parameter or header the operation
    does not declare (ignored)."""
    if failure.code != "ST201":
        return False
    meta = getattr(case, "meta", None)
    data = getattr(getattr(meta, "phase", None), "data", None)
    mutations = getattr(data, "mutations", None) or ()
    if mutations:
        return all(_ignored_mutation(m, case) for m in mutations)
    # No structured mutations: an undeclared query parameter is all there is to go on.
    return bool(set(case.query or {}) - _declared_query_parameters(case))


def bulk_operation_errors_reported(failure, case, response) -> bool:
    """A schema-violating BulkRequest answered 200 whose BulkResponse reports an error for
    an operation: RFC 7644 §3.7.3 answers a bad operation in its own entry."""
    if failure.code != "ST201" or response.status_code != 200:
        return False
    try:
        body = response.json()
    except Exception:  # not JSON: not a BulkResponse
        return False
    operations = body.get("Operations") if isinstance(body, dict) else None
    return isinstance(operations, list) and any(
        str(op.get("status", "")).startswith("4") for op in operations if isinstance(op, dict)
    )


def _scim_error(response) -> tuple[str, str]:
    try:
        body = response.json()
    except Exception:  # not JSON: no SCIM error
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("scimType") or ""), str(body.get("detail") or "")


# Grammar-bound strings: filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2) are defined
# by recursive ABNF (`valFilter` nests filters in brackets and parentheses), which no
# JSON Schema pattern (a regular expression) can express.
GRAMMAR_TYPES = {"invalidFilter", "invalidPath"}


def grammar_rejection(failure, case, response) -> bool:
    """A schema-valid request refused with 400 `invalidFilter` or `invalidPath`."""
    if failure.code != "ST202" or response.status_code != 400:
        return False
    return _scim_error(response)[0] in GRAMMAR_TYPES


# Refusals that depend on what the server holds or on the clock, which a request's schema
# cannot know: RFC 9865 cursors are opaque and only the server's own are valid (400
# `invalidCursor`; a negative `count` beside one is `invalidCount`, a rule across two query
# parameters, which OpenAPI cannot state); a PATCH target that matches nothing (RFC 7644
# §3.5.2 `noTarget`) or a value whose type is not its target attribute's (§3.5.2: the
# value's type is the attribute's, served at /Schemas); members and tenants that do not
# exist; an expiry in the past.
DATA_TYPES = {"invalidCursor", "invalidCount", "noTarget"}
DATA_DETAILS = (
    "is neither a user nor a group of this tenant",
    "expiry must be in the future",
    "is a built-in schema",
    "is not a singular attribute this server can sort on",
    "is not an attribute path",
    "attribute names must differ",
    " not found",
    "is not the URN it updates",
    "an update may only add attributes and widen types",
    "the tenant's latest sequence",
    "(the latest sequence)",
    "are past retention",
)


def data_dependent_rejection(failure, case, response) -> bool:
    """A schema-valid request refused for what the server holds or the time it is."""
    if failure.code != "ST202" or response.status_code != 400:
        return False
    scim_type, detail = _scim_error(response)
    return scim_type in DATA_TYPES or any(d in detail for d in DATA_DETAILS)


def set_receiver_form_rejection(failure, case, response) -> bool:
    """A SET receiver refused for an event URI outside its form, or a Shared Signals URI
    without `signals`: rules the document states with `if`/`then`/`else`."""
    if failure.code != "ST202" or response.status_code != 400:
        return False
    _, detail = _scim_error(response)
    return "is not in the receiver's form" in detail or "set `signals: true`" in detail


def push_endpoint_rejection(failure, case, response) -> bool:
    """A SET push receiver refused for where its endpoint leads (an internal address, a
    loopback name, `http` off loopback: the server's SCIMBUS_SET_PUSH_ALLOW_PRIVATE
    decides), an `authorization` without an `endpoint`, or an application credential's
    receiver without an `endpoint`, with `after`, or of a credential that reads no tenant."""
    if failure.code != "ST202" or response.status_code != 400:
        return False
    _, detail = _scim_error(response)
    return (
        detail.startswith("`endpoint`: ")
        or "`authorization` is for push receivers" in detail
        or "receiver of an application credential" in detail
        or "reads no live tenant" in detail
    )


def used_setup_link(failure, case, response) -> bool:
    """A setup link's token revealed before: 410 for every later reveal (single use), a
    state of the link no schema can know."""
    if failure.code != "ST202" or response.status_code != 410:
        return False
    return "this setup link has been used" in response.text


def patch_value_rejection(failure, case, response) -> bool:
    """A schema-valid PatchOp refused with 400 `invalidValue`: its `value` does not fit the
    attribute its `path` (or, without a path, its keys) names."""
    if failure.code != "ST202" or response.status_code != 400:
        return False
    return _scim_error(response)[0] == "invalidValue"


def signed_out_redirect(failure, case, response) -> bool:
    """A console request without the session cookie (the check removed it, or changed it)
    sent to the sign-in page with 303: how a browser's page refuses a signed-out visitor."""
    if failure.code != "ST201" or response.status_code != 303:
        return False
    cookie = (case.cookies or {}).get(console_session.COOKIE)
    live = cookie is not None and cookie in (CONSOLE.session, CONSOLE.provisioned_session)
    return not live and response.headers.get("location", [""])[0] == "/console/"


def unconfirmed_discard(failure, case, response) -> bool:
    """A discard of a hold whose `confirm` is not the tenant's slug: 400 by design (the
    operator must type it), a rule across a path and a form field no schema states."""
    if failure.code != "ST202" or response.status_code != 400:
        return False
    return "to confirm: nothing was discarded" in response.text


def revokes_the_runs_admin_token(case) -> bool:
    """A revocation of an admin token the run authenticates with (provision.py wrote their
    ids to protected_admin_ids.dict in the work directory, schemathesis's cwd)."""
    path = Path("protected_admin_ids.dict")
    if not path.exists():
        return False
    protected = {json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line}
    return (case.path_parameters or {}).get("id") in protected


INPUTS = {
    "attribute_name_sliced_mid_char": attribute_name_sliced_mid_char,
    "near_f64_max_number": near_f64_max_number,
    "nul_in_body": nul_in_body,
    "revokes_the_runs_admin_token": revokes_the_runs_admin_token,
}
FAILURES = {
    "mutation_not_sent_or_ignored": mutation_not_sent_or_ignored,
    "bulk_operation_errors_reported": bulk_operation_errors_reported,
    "grammar_rejection": grammar_rejection,
    "data_dependent_rejection": data_dependent_rejection,
    "patch_value_rejection": patch_value_rejection,
    "used_setup_link": used_setup_link,
    "unconfirmed_discard": unconfirmed_discard,
    "signed_out_redirect": signed_out_redirect,
    "set_receiver_form_rejection": set_receiver_form_rejection,
    "push_endpoint_rejection": push_endpoint_rejection,
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


# --- the console's session -----------------------------------------------------------------

class _Console:
    """The live console session (schemathesis's cwd is the work directory provision.py
    wrote it to) and the CSRF token provision.py's dictionary holds."""

    def __init__(self) -> None:
        self.session: str | None = None
        self.csrf: str | None = None
        self.provisioned_session: str | None = None
        self.provisioned_csrf: str | None = None

    def load(self) -> None:
        if self.session is None:
            self.session = Path("console_session").read_text(encoding="utf-8").strip()
            self.provisioned_session = self.session
            line = Path("console_csrf.dict").read_text(encoding="utf-8").splitlines()[0]
            self.provisioned_csrf = self.csrf = json.loads(line)

    def renew(self) -> None:
        self.session, self.csrf = console_session.sign_in(
            os.environ["SCIMBUS_FUZZ_BASE"], os.environ["SCIMBUS_FUZZ_ADMIN_TOKEN"],
            os.environ["SCIMBUS_FUZZ_TENANT"])


CONSOLE = _Console()


def _is_console(case) -> bool:
    return case.operation.path.startswith("/console/")


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    if not _is_console(case):
        return
    CONSOLE.load()
    cookies = case.cookies or {}
    # The provisioned session (schemathesis.toml's auth) becomes the live one; a cookie the
    # auth checks removed or changed stays as they made it.
    if cookies.get(console_session.COOKIE) == CONSOLE.provisioned_session:
        case.cookies = dict(cookies, **{console_session.COOKIE: CONSOLE.session})
    if case.method.upper() == "POST":
        case.headers = dict(case.headers or {}, Origin=os.environ["SCIMBUS_FUZZ_BASE"])
    if isinstance(case.body, dict) and case.body.get("csrf") == CONSOLE.provisioned_csrf:
        case.body = dict(case.body, csrf=CONSOLE.csrf)
    if (case.path_parameters or {}).get("id") == console_session.NEWEST_ENTRY:
        case.path_parameters = dict(case.path_parameters, id=console_session.newest_entry(
            os.environ["SCIMBUS_FUZZ_BASE"], os.environ["SCIMBUS_FUZZ_ADMIN_TOKEN"],
            os.environ["SCIMBUS_FUZZ_TENANT"]))


@schemathesis.hook
def after_call(context, case, response) -> None:
    if _is_console(case) and case.operation.path == "/console/sign-out" \
            and response.status_code == 303:
        CONSOLE.renew()

"""Validates Compose files without Docker: the Compose Specification's JSON Schema (vendored
beside this file, see README.md) after Compose's variable interpolation, then this project's
rules:

- every service has a healthcheck, or says why not in `x-healthcheck-exempt: <reason>`;
- healthcheck durations parse as Compose durations (`10s`, `1m30s`) and `test` starts with
  CMD, CMD-SHELL or NONE;
- every `depends_on` (and `links`) names a service of the file, there is no dependency
  cycle, and `condition: service_healthy` points at a service with a healthcheck;
- a local `build` context exists and so does its Dockerfile;
- every named volume a service mounts is declared under `volumes:`;
- no mapping repeats a key (Compose refuses them; YAML libraries often keep the last).

Usage:
    check_compose.py --schema SCHEMA [--placeholders FILE] COMPOSE_FILE...
    check_compose.py --schema SCHEMA --self-test DIR

With --placeholders, a variable required by `${VAR:?…}` or `${VAR?…}` that is unset gets a
placeholder value and its name is written to FILE (one a line), so a file that needs secrets
at deploy time can still be checked; without it, an unset required variable is an error, as
in Compose.

--self-test DIR checks every DIR/valid/*.yaml (each must pass) and DIR/invalid/*.yaml (each
must fail with every message named on its `# expect: …` lines).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from strict_yaml import StrictLoader  # noqa: E402 (tests/strict_yaml.py)

EXEMPT_KEY = "x-healthcheck-exempt"
NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
# Go's time.ParseDuration, which Compose uses for healthcheck times.
DURATION = re.compile(r"^(0|[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)$")
DURATION_KEYS = ("interval", "timeout", "start_period", "start_interval")


class CheckError(Exception):
    pass


# --- YAML without duplicate keys ----------------------------------------------------------
_Loader = StrictLoader


def load_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return yaml.load(f, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise CheckError(f"not valid YAML: {e}") from e


# --- interpolation (Compose Specification, "Interpolation") -------------------------------
class Interpolator:
    def __init__(self, env: dict[str, str], placeholders: bool) -> None:
        self.env = env
        self.placeholders = placeholders
        self.required: list[str] = []
        self.warnings: list[str] = []

    def value(self, name: str, where: str) -> str:
        if name not in self.env:
            self.warnings.append(f"{where}: variable {name} is not set; it becomes an empty string")
            return ""
        return self.env[name]

    def expand(self, text: str, where: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if ch != "$":
                out.append(ch)
                i += 1
            elif text.startswith("$$", i):
                out.append("$")
                i += 2
            elif text.startswith("${", i):
                end = self._closing(text, i + 2)
                if end < 0:
                    raise CheckError(f"{where}: unterminated `${{` in {text!r}")
                out.append(self._braced(text[i + 2 : end], where))
                i = end + 1
            else:
                m = NAME.match(text, i + 1)
                if not m:
                    raise CheckError(f"{where}: invalid interpolation in {text!r} (write $$ for a $)")
                out.append(self.value(m.group(), where))
                i = m.end()
        return "".join(out)

    @staticmethod
    def _closing(text: str, start: int) -> int:
        depth = 1
        i = start
        while i < len(text):
            if text.startswith("$$", i):
                i += 2
                continue
            if text.startswith("${", i):
                depth += 1
                i += 2
                continue
            if text[i] == "}":
                depth -= 1
                if depth == 0:
                    return i
            i += 1
        return -1

    def _braced(self, expr: str, where: str) -> str:
        m = NAME.match(expr)
        if not m:
            raise CheckError(f"{where}: invalid interpolation `${{{expr}}}`")
        name, rest = m.group(), expr[m.end() :]
        if not rest:
            return self.value(name, where)
        is_set = name in self.env
        non_empty = is_set and self.env[name] != ""
        for op in (":-", ":?", ":+", "-", "?", "+"):
            if rest.startswith(op):
                arg = rest[len(op) :]
                present = non_empty if op.startswith(":") else is_set
                if op in (":-", "-"):
                    return self.env[name] if present else self.expand(arg, where)
                if op in (":+", "+"):
                    return self.expand(arg, where) if present else ""
                if present:
                    return self.env[name]
                if self.placeholders:
                    if name not in self.required:
                        self.required.append(name)
                    return f"placeholder-for-{name}-set-at-deploy-time"
                raise CheckError(f"{where}: required variable {name} is missing a value: {arg}")
        raise CheckError(f"{where}: invalid interpolation `${{{expr}}}`")

    def walk(self, node: Any, where: str = "") -> Any:
        if isinstance(node, dict):
            return {k: self.walk(v, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [self.walk(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str):
            return self.expand(node, where)
        return node


def dotenv(path: Path) -> dict[str, str]:
    """The project directory's `.env` (KEY=VALUE lines), as Compose reads it."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


# --- schema -------------------------------------------------------------------------------
def where_of(error: ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def explain(error: ValidationError) -> str:
    """jsonschema's words, except for unknown keys, which it words after the `^x-` pattern."""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        unknown = [k for k in error.instance if k not in known and not any(p.search(k) for p in patterns)]
        if unknown:
            names = ", ".join(repr(k) for k in unknown)
            return f"unknown key{'s' if len(unknown) > 1 else ''} {names} (not in the Compose Specification; extensions start with x-)"
    return error.message


def schema_errors(doc: Any, schema: dict[str, Any]) -> Iterator[str]:
    validator = Draft7Validator(schema)
    for error in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        # For oneOf/anyOf, the branch that came closest says more than "is not valid under".
        detail = best_match(error.context) if error.context else error
        message = explain(detail)
        message = message if len(message) <= 300 else message[:300] + "…"
        yield f"schema: {where_of(detail)}: {message}"


# --- project rules -------------------------------------------------------------------------
def has_healthcheck(service: dict[str, Any]) -> bool:
    hc = service.get("healthcheck")
    if not isinstance(hc, dict) or hc.get("disable") in (True, "true", "True"):
        return False
    test = hc.get("test")
    if isinstance(test, list):
        return bool(test) and test[0] != "NONE"
    return isinstance(test, str) and test.strip() != "" and test.strip() != "NONE"


def depends_on_names(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {str(d): {"condition": "service_started"} for d in deps}
    if isinstance(deps, dict):
        return {str(k): (v if isinstance(v, dict) else {}) for k, v in deps.items()}
    return {}


def is_remote(context: str) -> bool:
    return "://" in context or context.startswith(("git@", "github.com/"))


def named_volumes(service: dict[str, Any]) -> Iterator[str]:
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source = volume.split(":", 1)[0] if ":" in volume else ""
            if source and not source.startswith(("/", ".", "~", "$")):
                yield source
        elif isinstance(volume, dict) and volume.get("type", "volume") == "volume" and volume.get("source"):
            yield str(volume["source"])


def rule_errors(doc: dict[str, Any], base: Path) -> Iterator[str]:
    services = doc.get("services")
    if not isinstance(services, dict) or not services:
        yield "the file defines no services"
        return
    declared_volumes = set((doc.get("volumes") or {}).keys())
    healthy: set[str] = set()
    for name, service in services.items():
        service = service or {}
        exempt = service.get(EXEMPT_KEY)
        if has_healthcheck(service):
            healthy.add(name)
            hc = service["healthcheck"]
            for key in DURATION_KEYS:
                if key in hc and not DURATION.match(str(hc[key])):
                    yield f"services.{name}.healthcheck.{key}: {hc[key]!r} is not a duration (e.g. 10s, 1m30s)"
            test = hc.get("test")
            if isinstance(test, list) and test[0] not in ("CMD", "CMD-SHELL"):
                yield f"services.{name}.healthcheck.test: a list must start with CMD or CMD-SHELL, not {test[0]!r}"
            if exempt is not None:
                yield f"services.{name}: has a healthcheck and {EXEMPT_KEY}; drop one"
        elif not (isinstance(exempt, str) and exempt.strip()):
            yield (
                f"services.{name}: has no healthcheck (add one, or give the reason in "
                f"`{EXEMPT_KEY}: <why>`)"
            )

        for dep, spec in depends_on_names(service).items():
            if dep not in services:
                yield f"services.{name}.depends_on: depends on unknown service {dep!r}"
            elif dep == name:
                yield f"services.{name}.depends_on: a service cannot depend on itself"
        for link in service.get("links") or []:
            target = str(link).split(":", 1)[0]
            if target not in services:
                yield f"services.{name}.links: links to unknown service {target!r}"

        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else str(build.get("context", "."))
            if not is_remote(context):
                context_dir = (base / context).resolve()
                if not context_dir.is_dir():
                    yield f"services.{name}.build.context: {context!r} is not a directory ({context_dir})"
                elif not (isinstance(build, dict) and "dockerfile_inline" in build):
                    dockerfile = "Dockerfile" if isinstance(build, str) else str(build.get("dockerfile", "Dockerfile"))
                    path = (context_dir / dockerfile).resolve()
                    if not path.is_file():
                        yield f"services.{name}.build.dockerfile: no Dockerfile at {path}"

        for volume in named_volumes(service):
            if volume not in declared_volumes:
                yield f"services.{name}.volumes: mounts undefined volume {volume!r} (declare it under top-level volumes:)"

    # service_healthy needs a healthcheck on the other side (checked after all are known).
    for name, service in services.items():
        for dep, spec in depends_on_names(service or {}).items():
            if dep in services and spec.get("condition") == "service_healthy" and dep not in healthy:
                yield f"services.{name}.depends_on.{dep}: condition service_healthy, but {dep!r} has no healthcheck"

    # Cycles (Compose refuses them).
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> Iterator[str]:
        state[node] = 1
        for dep in depends_on_names(services.get(node) or {}):
            if dep not in services or dep == node:
                continue
            if state.get(dep) == 1:
                cycle = trail[trail.index(dep) :] + [dep] if dep in trail else [node, dep]
                yield "depends_on: dependency cycle " + " -> ".join(cycle)
            elif state.get(dep) is None:
                yield from visit(dep, trail + [dep])
        state[node] = 2

    for name in services:
        if state.get(name) is None:
            yield from visit(name, [name])


# --- driver -------------------------------------------------------------------------------
def check(path: Path, schema: dict[str, Any], placeholders: bool) -> tuple[list[str], list[str], list[str], dict[str, Any]]:
    """Returns (errors, warnings, required variables, the interpolated document)."""
    try:
        raw = load_yaml(path)
        if not isinstance(raw, dict):
            return ["the file is not a mapping"], [], [], {}
        env = dotenv(path.parent / ".env")
        env.update(os.environ)
        interp = Interpolator(env, placeholders)
        doc = interp.walk(raw)
    except CheckError as e:
        return [str(e)], [], [], {}
    errors = list(schema_errors(doc, schema))
    errors += list(rule_errors(doc, path.parent))
    return errors, interp.warnings, interp.required, doc


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run_files(files: list[Path], schema: dict[str, Any], placeholders_out: Path | None) -> int:
    failed = False
    required_all: list[str] = []
    for path in files:
        errors, warnings, required, doc = check(path, schema, placeholders_out is not None)
        for w in warnings:
            print(f"{display(path)}: warning: {w}", file=sys.stderr)
        if errors:
            failed = True
            for e in errors:
                print(f"{display(path)}: {e}", file=sys.stderr)
            print(f"{display(path)}: FAILED ({len(errors)} problem{'s' if len(errors) != 1 else ''})", file=sys.stderr)
        else:
            services = list((doc.get("services") or {}).keys())
            note = f"; placeholders for {', '.join(required)}" if required else ""
            print(f"{display(path)}: OK (schema and rules; services: {', '.join(services)}{note})")
        required_all += [r for r in required if r not in required_all]
    if placeholders_out is not None:
        placeholders_out.write_text("".join(f"{r}\n" for r in required_all), encoding="utf-8")
    return 1 if failed else 0


def self_test(directory: Path, schema: dict[str, Any]) -> int:
    valid = sorted((directory / "valid").glob("*.yaml"))
    invalid = sorted((directory / "invalid").glob("*.yaml"))
    if not valid or not invalid:
        print(f"self-test: no fixtures under {directory}/valid and {directory}/invalid", file=sys.stderr)
        return 1
    failed: list[str] = []

    def fail(path: Path, why: str) -> None:
        print(f"self-test: {display(path)}: {why}", file=sys.stderr)
        failed.append(str(path))

    for path in valid:
        errors, _, _, _ = check(path, schema, placeholders=True)
        if errors:
            fail(path, "should pass but failed: " + "; ".join(errors))
    for path in invalid:
        expected = [
            line.split(":", 1)[1].strip()
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("# expect:")
        ]
        errors, _, _, _ = check(path, schema, placeholders=True)
        if not expected:
            fail(path, "has no `# expect: <message>` line")
        elif not errors:
            fail(path, "should fail but passed")
        else:
            missing = [want for want in expected if not any(want in e for e in errors)]
            if missing:
                fail(path, f"no error mentions {missing}; got: " + "; ".join(errors))
    total = len(valid) + len(invalid)
    print(f"self-test: {total - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--placeholders", type=Path, help="write required variables given placeholders here")
    parser.add_argument("--self-test", type=Path, metavar="DIR")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args()
    schema = json.loads(args.schema.read_text(encoding="utf-8"))
    if args.self_test:
        return self_test(args.self_test, schema)
    if not args.files:
        parser.error("name at least one compose file")
    return run_files(args.files, schema, args.placeholders)


if __name__ == "__main__":
    sys.exit(main())

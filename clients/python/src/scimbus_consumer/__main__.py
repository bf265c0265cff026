"""`python -m scimbus_consumer` (or `scimbus-consumer`): operate an app's consumer.

    scimbus-consumer reconcile --consumer myapp.events:make_consumer [--tenant acme] [--check]
    scimbus-consumer dead-letters --consumer myapp.events:make_consumer [--replay]
    scimbus-consumer effects --consumer myapp.events:make_consumer [--dead] [--retry]

`--consumer MODULE:NAME` names the app's `Consumer`, or a function (sync or async, no
arguments) that builds it with its handlers, store and pull client, the way the app does.

Exit codes: 0 nothing to report; 1 `reconcile` found divergences (repaired unless
`--check`), `dead-letters` found messages (after `--replay`: messages left), `effects`
found dead effects; 2 a usage or connection error.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import logging
import sys
from typing import Any

from .consumer import Consumer


async def load(spec: str) -> Consumer:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SystemExit(f"--consumer takes MODULE:NAME, not {spec!r}")
    target: Any = getattr(importlib.import_module(module_name), attr)
    if not isinstance(target, Consumer):
        target = target()
        if inspect.isawaitable(target):
            target = await target
    if not isinstance(target, Consumer):
        raise SystemExit(f"{spec} is not a Consumer nor returns one")
    return target


def _print(record: dict[str, Any]) -> None:
    print(json.dumps(record, default=str, sort_keys=True))


async def run(args: argparse.Namespace) -> int:
    consumer = await load(args.consumer)
    try:
        if args.command == "reconcile":
            if consumer.pull is None:
                raise SystemExit("reconcile needs the consumer's pull client (scimbus URL and events:read tokens)")
            report = await consumer.reconcile(args.tenant or None, repair=not args.check, grace=args.grace)
            for d in report.divergences:
                _print({"tenant": d.tenant, "subject": d.subject, "why": d.why, "repaired": d.repaired})
            _print({"checked": report.checked, "divergences": len(report.divergences), "repaired": report.repaired})
            return 1 if report.divergences else 0
        if args.command == "dead-letters":
            letters = await consumer.dead_letters(replay=args.replay)
            left = 0
            for letter in letters:
                event = letter.event
                kept = not args.replay or letter.outcome is None
                left += kept
                _print(
                    {
                        "id": event.id if event else None,
                        "type": event.type if event else None,
                        "tenant": event.tenant if event else None,
                        "subject": event.subject if event else None,
                        "reason": letter.reason,
                        "error": letter.error,
                        "outcome": letter.outcome.value if letter.outcome else None,
                        "kept": kept,
                    }
                )
            return 1 if left else 0
        if args.command == "effects":
            if args.retry:
                _print({"retried": await consumer.store.retry_dead()})
            dead = await consumer.store.list_effects(dead=True)
            for effect in dead if args.dead or args.retry else await consumer.store.list_effects(dead=False):
                _print(effect)
            return 1 if dead else 0
        raise SystemExit(f"unknown command {args.command}")
    finally:
        if consumer.pull is not None:
            await consumer.pull.aclose()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="scimbus-consumer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)
    reconcile = commands.add_parser("reconcile", help="compare with scimbus's snapshots and repair")
    reconcile.add_argument("--tenant", action="append", help="only this tenant (repeatable)")
    reconcile.add_argument("--check", action="store_true", help="report only, repair nothing")
    reconcile.add_argument("--grace", type=float, default=5.0, help="seconds for events on their way (default 5)")
    dead = commands.add_parser("dead-letters", help="list (or replay) the dead-letter queue")
    dead.add_argument("--replay", action="store_true", help="process each message again; remove it when that succeeds")
    effects = commands.add_parser("effects", help="list pending (or dead) deferred effects")
    effects.add_argument("--dead", action="store_true", help="list dead effects")
    effects.add_argument("--retry", action="store_true", help="make every dead effect due again")
    for sub in (reconcile, dead, effects):
        sub.add_argument("--consumer", required=True, help="MODULE:NAME of the app's Consumer or of a function building it")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(run(args))
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        raise
    except Exception as exc:  # noqa: BLE001 - a connection or protocol error: exit 2, not 1
        print(f"scimbus-consumer: {exc!r}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

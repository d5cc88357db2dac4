"""`iact-agent`: the thin command line over the agents library.

Each agent module exposes ``register(subparsers)``; the sub-command sets ``func(args) -> int``.
Expected failures are :class:`~iact_agents.errors.AgentError` subclasses, printed as one line on
stderr with their exit code; no traceback reaches the user unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .errors import AgentError

log = logging.getLogger("iact_agents")

# Agent sub-command modules, in the order `--help` lists them. Each has register(subparsers).
COMMAND_MODULES: tuple[str, ...] = (
    "iact_agents.jobs",
    "iact_agents.sessions",
    "iact_agents.retention",
    "iact_agents.collector.cli",
    "iact_agents.health",
    "iact_agents.dora.cli",
    "iact_agents.audit",
    "iact_agents.ring",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iact-agent", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * min(verbosity, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args))
    except AgentError as exc:
        print(f"iact-agent {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        log.debug("unexpected error", exc_info=True)
        print(f"iact-agent {args.command}: unexpected error: {type(exc).__name__}: {exc} (run with --debug)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

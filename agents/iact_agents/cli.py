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

# Agent sub-command modules, in the order `--help` lists them, with the sub-commands each registers
# (register(subparsers)). Running one sub-command imports only its module: a daemon's memory counts every
# module loaded (the collector's would grow by about 12 MB with the other agents'). A unit test keeps the
# names in step with what the modules register.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "iact_agents.jobs": ("job",),
    "iact_agents.sessions": ("sessions",),
    "iact_agents.retention": ("retention",),
    "iact_agents.collector.cli": ("collect",),
    "iact_agents.health": ("health",),
    "iact_agents.remediate": ("remediate",),
    "iact_agents.dora.cli": ("dora",),
    "iact_agents.quality.cli": ("quality",),
    "iact_agents.audit": ("audit",),
    "iact_agents.ring": ("cassandra",),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every sub-command, or only of ``command`` when it is one of them."""
    parser = argparse.ArgumentParser(prog="iact-agent", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    known = any(command in names for names in COMMAND_MODULES.values())
    for name, names in COMMAND_MODULES.items():
        if not known or command in names:
            importlib.import_module(name).register(sub)
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * min(verbosity, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
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

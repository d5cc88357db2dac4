"""``iact-agent collect``: run the log collector, or check its configuration."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from .config import DEFAULT_CONFIG_PATH, CollectorConfig, load

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "collect", help="ship log files and the journal into Cassandra",
        description="Follow the configured log files and the systemd journal and write every line into "
                    "Cassandra, committing positions only after Cassandra acknowledged them.",
    )
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH,
                   help=f"TOML file (default {DEFAULT_CONFIG_PATH})")
    p.add_argument("--check-config", action="store_true", help="validate the configuration and the credential file, "
                   "then exit")
    p.add_argument("--once", action="store_true", help="exit when every source has been read to its end")
    p.add_argument("--state-dir", type=Path, help="override state_dir")
    p.add_argument("--host", help="override host (the host column)")
    p.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.state_dir is not None:
        out["state_dir"] = str(args.state_dir)
    if args.host is not None:
        out["host"] = args.host
    return out


def load_from_args(args: argparse.Namespace) -> CollectorConfig:
    cfg = load(args.config, overrides=_overrides(args))
    cfg.cassandra.password()  # a missing, empty or world-readable credential file is a config error now
    cfg.cassandra.ssl_context()  # and so is a CA file that is missing or not a certificate
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = load_from_args(args)
    if args.check_config:
        sources = [p for f in cfg.files for p in f.paths] + ([f"journal ({cfg.journal.source})"]
                                                               if cfg.journal.enabled else [])
        print(f"{args.config}: OK: {len(sources)} sources, Cassandra {','.join(cfg.cassandra.contact_points)}"
              f" (DC {cfg.cassandra.local_dc}), table {cfg.cassandra.keyspace}.{cfg.cassandra.table}")
        return 0
    # The Cassandra driver is imported only when the collector runs, not for every `iact-agent` command.
    from .daemon import Collector, StopFlag  # noqa: PLC0415
    from .sink import CassandraSink  # noqa: PLC0415

    stop = StopFlag()
    stop.install()
    sink = CassandraSink(
        cfg.cassandra, host=cfg.host, store_raw=cfg.store_raw == "always", retry_initial_s=cfg.retry_initial_s,
        retry_max_s=cfg.retry_max_s, should_stop=lambda: bool(stop),
        drain_deadline=lambda: None if stop.requested_at is None else stop.requested_at + cfg.drain_timeout_s,
    )
    return Collector(cfg, sink, stop=stop).run(once=args.once)

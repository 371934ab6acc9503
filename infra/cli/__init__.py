"""`robson` command line: parse arguments, call one use case, print JSON or a clear error.

Each command group has a module of its own; this one assembles the parser and runs a command.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from domain.errors import ConfigurationError, DomainError
from infra.cli import clients, event_log, paper, processes, replay
from infra.cli.common import Handler
from infra.settings import Settings
from infra.vault import VaultError


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="robson", description="Risk-first trading ledger")
    commands = root.add_subparsers(dest="command", required=True)
    event_log.add_migrate(commands)
    clients.add_client(commands)
    paper.add_paper(commands)
    clients.add_policy(commands)
    event_log.add_events(commands)
    event_log.add_projections(commands)
    processes.add_serve(commands)
    processes.add_workers(commands)
    paper.add_demo(commands)
    replay.add_parser(commands)
    return root


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        settings = Settings.from_env(os.environ if env is None else env)
        return handler(args, settings, sys.stdout)
    except (DomainError, ConfigurationError, VaultError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2

"""What every command shares: argument types, JSON output, and services built for one
command and closed after it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TextIO, TypeAlias

from infra.bootstrap import Services, build_services
from infra.settings import Settings

Handler = Callable[[argparse.Namespace, Settings, TextIO], int]
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # each group adds to it


def decimal_arg(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError("must be a finite number")
    return value


def since_arg(text: str) -> int | datetime:
    if text.isdigit():
        return int(text)
    return moment_arg(text)


def moment_arg(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def print_json(out: TextIO, payload: Mapping[str, object]) -> None:
    out.write(json.dumps(payload, indent=2, default=str) + "\n")


def with_services(settings: Settings, body: Callable[[Services], int]) -> int:
    services = build_services(settings)
    try:
        return body(services)
    finally:
        services.close()


def seconds_arg(text: str) -> float:
    value = decimal_arg(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return float(value)

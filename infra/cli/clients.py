"""`robson client ...` (tenants, tokens, credentials) and `robson policy ...` (a tenant's
risk policy)."""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal
from typing import TextIO

from domain.errors import DomainError
from infra.bootstrap import Services
from infra.cli.common import Commands, decimal_arg, print_json, with_services
from infra.settings import Settings


def cmd_client_create(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    def body(s: Services) -> int:
        reg = s.ledger.register_client(args.name, args.email, args.capital, args.operator)
        print_json(out, {"client_id": str(reg.client_id), "token": reg.token})
        return 0

    return with_services(settings, body)


def cmd_client_token(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    def body(s: Services) -> int:
        print_json(out, {"token": s.ledger.issue_token(args.email)})
        return 0

    return with_services(settings, body)


def cmd_client_credentials(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if not args.secret_key_stdin:
        raise DomainError("pass --secret-key-stdin and the secret key on standard input")
    secret = sys.stdin.readline().strip()

    def body(s: Services) -> int:
        masked = s.ledger.set_credentials(args.email, args.api_key, secret)
        print_json(out, {"email": args.email, "masked_api_key": masked, "has_credentials": True})
        return 0

    return with_services(settings, body)


def cmd_policy_resume(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    def body(s: Services) -> int:
        client = s.ledger.client_by_email(args.email)
        policy = s.ledger.resume_trading(client.id, args.by, args.note)
        print_json(out, {"email": client.email, "paused": policy.paused, "resumed_by": args.by})
        return 0

    return with_services(settings, body)


def add_client(commands: Commands) -> None:
    """Register clients, issue tokens, store their Binance keys."""
    client = commands.add_parser("client", help="tenants, tokens, credentials")
    client_cmds = client.add_subparsers(dest="client_command", required=True)
    create = client_cmds.add_parser("create", help="register a client; prints its first token")
    create.add_argument("--name", required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--capital", type=decimal_arg, default=Decimal(1000))
    create.add_argument("--operator", action="store_true")
    create.set_defaults(handler=cmd_client_create)
    token = client_cmds.add_parser("token", help="issue another API token")
    token.add_argument("--email", required=True)
    token.set_defaults(handler=cmd_client_token)
    creds = client_cmds.add_parser("credentials", help="store encrypted Binance keys")
    creds.add_argument("--email", required=True)
    creds.add_argument("--api-key", required=True)
    creds.add_argument("--secret-key-stdin", action="store_true")
    creds.set_defaults(handler=cmd_client_credentials)


def add_policy(commands: Commands) -> None:
    """Lift a tenant's trading pause after a review."""
    policy = commands.add_parser("policy", help="risk policy")
    policy_cmds = policy.add_subparsers(dest="policy_command", required=True)
    resume = policy_cmds.add_parser("resume", help="record a review and lift a pause")
    resume.add_argument("--email", required=True)
    resume.add_argument("--note", required=True)
    resume.add_argument("--by", default=os.environ.get("USER") or "operator")
    resume.set_defaults(handler=cmd_policy_resume)

"""Scenario 3: a throw-away PostgreSQL (initdb into a temp dir, its own port) stopped with
`pg_ctl stop -m immediate` and started again, over and over, under buys from several clients
through `robson serve`. Then: every buy answered 200 or 202 is in the ledger once; no buy
answered with an error executed, unless its reply said the outcome was unknown."""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg

from domain.position import Status
from infra.bootstrap import build_services
from infra.settings import Settings
from tests.soak.harness import Outcome, base_env, new_client, robson, scaled, serving, workdir

CLIENTS = 6
ENTERED = (Status.OPEN, Status.CLOSING, Status.CLOSED)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no {name} under /usr/lib/postgresql/*/bin")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Throwaway:
    """A PostgreSQL cluster of its own, run as the postgres user (we may be root)."""

    def __init__(self, root: Path) -> None:
        self.data = root / "pgdata"
        self.port = _free_port()
        root.chmod(0o777)
        self.user = [] if shutil.which("runuser") is None else ["runuser", "-u", "postgres", "--"]
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE soak")

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.user, *argv], check=True, capture_output=True, timeout=120)

    def url(self, db: str = "soak") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        log = str(self.data / "server.log")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def crash(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def stop(self) -> None:
        subprocess.run(
            [*self.user, _pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"],
            capture_output=True,
            timeout=120,
            check=False,
        )


@dataclass
class Buyer:
    token: str
    client_id: UUID
    replies: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


def _buy_until(url: str, buyer: Buyer, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {buyer.token}"}
    body = {"stop_price": "98000", "amount": "20"}
    with httpx.Client(base_url=url, timeout=15) as http:
        while not stop.is_set():
            try:
                reply = http.post("/api/trade/buy-btc/", headers=headers, json=body)
                try:
                    parsed = reply.json()
                except ValueError:
                    parsed = {"raw": reply.text[:200]}
                buyer.replies.append((reply.status_code, parsed))
            except httpx.TransportError as error:
                buyer.replies.append((0, {"transport": type(error).__name__}))
                time.sleep(0.2)


def database_restarts() -> Outcome:
    """Scenario 3: PostgreSQL killed and restarted under buys through the API."""
    restarts = scaled(10, 2)
    outcome = Outcome("3 PostgreSQL restarted under load")
    started = time.monotonic()
    with workdir("pg") as root:
        pg = Throwaway(root)
        try:
            env = base_env(
                root / "home",
                ROBSON_DATABASE_URL=pg.url(),
                ROBSON_PAPER_BALANCE="1000000",
                ROBSON_RATE_LIMIT="1000000/hour",
            )
            robson(env, "migrate")
            buyers = []
            for n in range(CLIENTS):
                made = new_client(env, f"Load {n}", f"load-{n}@example.com", "--capital", "100000")
                buyers.append(Buyer(made["token"], UUID(made["client_id"])))
            ops = new_client(env, "Ops", "ops@example.com", "--operator")
            with serving(env, root / "serve.log", "--no-workers") as (_, url):
                with httpx.Client(base_url=url, timeout=15) as http:
                    http.post(
                        "/api/paper/price/",
                        headers={"Authorization": f"Bearer {ops['token']}"},
                        json={"symbol": "BTCUSDC", "price": "100000"},
                    ).raise_for_status()
                halt = threading.Event()
                threads = [threading.Thread(target=_buy_until, args=(url, b, halt)) for b in buyers]
                for thread in threads:
                    thread.start()
                try:
                    for _ in range(restarts):
                        time.sleep(3)
                        pg.crash()
                        outcome.faults += 1
                        time.sleep(1)
                        pg.start()
                    time.sleep(3)
                finally:
                    halt.set()
                    for thread in threads:
                        thread.join(timeout=60)
            _check(env, buyers, outcome)
        finally:
            pg.stop()
    outcome.seconds = time.monotonic() - started
    return outcome


def _check(env: dict[str, str], buyers: list[Buyer], outcome: Outcome) -> None:
    services = build_services(Settings.from_env(env))
    services.projections.run_once()  # the read models catch up with the whole log
    counts: dict[str, int] = {}
    try:
        for buyer in buyers:
            answered: set[UUID] = set()
            named: set[UUID] = set()  # positions an error reply named
            for status, body in buyer.replies:
                outcome.inputs += 1
                counts[str(status or "no answer")] = counts.get(str(status or "no answer"), 0) + 1
                if status >= 500 and status != 503:  # 503: the database is away, say so fast
                    outcome.server_errors += 1
                pid = body.get("position_id")
                if pid is None:
                    continue
                position = services.ledger.position(buyer.client_id, UUID(pid))
                if status in (200, 201):
                    answered.add(position.id)
                    if position.status not in ENTERED:
                        outcome.lost += 1
                        outcome.findings.append(
                            f"buy answered {status} but position {pid} is {position.status.value}"
                        )
                elif status == 202:
                    answered.add(position.id)
                elif body.get("outcome") == "unknown":
                    named.add(position.id)  # honest: the reply did not call it a failure
                elif position.status in ENTERED:
                    named.add(position.id)
                    outcome.misreported += 1
                    outcome.findings.append(
                        f"buy answered {status} {body} but position {pid} executed"
                    )
            # Positions the ledger executed that no 200/202 reply named.
            rows = services.read_models.positions(buyer.client_id, None, 500)
            executed = {r.position_id for r in rows if r.status in {s.value for s in ENTERED}}
            silent = executed - answered - named
            if silent:
                outcome.findings.append(
                    f"client {buyer.client_id}: {len(silent)} position(s) executed whose buy "
                    f"was answered with an error or not at all: {sorted(map(str, silent))[:5]}"
                )
            twice = len(answered) - len(set(answered))
            outcome.duplicated += twice
    finally:
        services.close()
    outcome.load = f"{len(buyers)} clients buying; replies " + ", ".join(
        f"{n}x {k}" for k, n in sorted(counts.items())
    )

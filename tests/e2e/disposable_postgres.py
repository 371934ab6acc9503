"""A PostgreSQL cluster of a test's own, on a free port, that the test may stop and start:
the shared server on 5432 must never go down under other tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import suppress
from glob import glob
from pathlib import Path

import psycopg


def _bindir() -> Path:
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DisposablePostgres:
    """initdb into a temporary directory, run as the `postgres` user when we are root."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.port = _free_port()
        self.datadir = Path(tempfile.mkdtemp(prefix="robson-outage-pg."))
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def init(self) -> DisposablePostgres:
        if os.geteuid() == 0:
            shutil.chown(self.datadir, "postgres")
        self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres")
        self.start()
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.datadir), "-l", f"{self.datadir}/log", "-w",
                  "-o", options, "start")  # fmt: skip

    def stop(self) -> None:
        """The way a crash or a failover looks to clients: connections cut at once."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def destroy(self) -> None:
        with suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)

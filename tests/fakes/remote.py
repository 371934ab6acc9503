"""A fake server in a process of its own, driven through a pipe: a benchmark's exchange then
spends its CPU outside the process it measures, as a real exchange does on another machine.

`RemoteFake(FakeBinance)` starts `FakeBinance()` in a child process; reading an attribute,
setting one or calling a method of the proxy does it in the child (arguments and results
must pickle). One caller at a time: the pipe is shared under a lock.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

_CALLABLE = "<callable>"


class RemoteFake:
    """`with RemoteFake(FakeBinance) as fake:` — `fake.url`, `fake.set_price(...)`,
    `fake.order_latency_seconds = 0.05` act on the server in the child process."""

    def __init__(self, kind: type[Any], **kwargs: Any) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited threads or locks
        here, there = context.Pipe()
        object.__setattr__(self, "_pipe", here)
        object.__setattr__(self, "_lock", threading.Lock())
        object.__setattr__(
            self,
            "_process",
            context.Process(target=_serve, args=(there, kind, kwargs), daemon=True),
        )

    def __enter__(self) -> RemoteFake:
        self._process.start()
        self._ask("started")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._ask("stop")
        finally:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
            self._pipe.close()

    def __getattr__(self, name: str) -> Any:
        value = self._ask("get", name)
        if value != _CALLABLE:
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._ask("call", name, args, kwargs)

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        self._ask("set", name, value)

    def cpu_seconds(self) -> float:
        """CPU time the child process has used so far (all its threads)."""
        return float(self._ask("cpu"))

    def _ask(self, op: str, *args: Any) -> Any:
        pipe: Connection = self.__dict__["_pipe"]
        with self.__dict__["_lock"]:
            pipe.send((op, args))
            ok, answer = pipe.recv()
        if not ok:
            raise RuntimeError(f"the fake in the child process failed: {answer}")
        return answer


def _serve(pipe: Connection, kind: type[Any], kwargs: dict[str, Any]) -> None:
    server = kind(**kwargs)
    server.start()
    while True:
        op, args = pipe.recv()
        try:
            answer: Any = None
            if op == "get":
                answer = getattr(server, args[0])
                if callable(answer):
                    answer = _CALLABLE
            elif op == "set":
                setattr(server, args[0], args[1])
            elif op == "cpu":
                answer = time.process_time()
            elif op == "call":
                answer = getattr(server, args[0])(*args[1], **args[2])
            elif op == "stop":
                server.stop()
                pipe.send((True, None))
                return
            pipe.send((True, answer))
        except Exception as error:  # handed back to the caller, who raises it
            pipe.send((False, f"{type(error).__name__}: {error}"))

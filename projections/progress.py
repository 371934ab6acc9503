"""A rebuild's progress on a terminal: one line redrawn in place, at most a few times a second."""

from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 30


class TerminalProgress:
    """A `Progress` callback drawing a bar on `stream`, only when it is a terminal."""

    def __init__(self, stream: TextIO, every_seconds: float = 0.2) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.every_seconds = every_seconds
        self.began = time.monotonic()
        self._drawn_at = 0.0

    def __call__(self, position: int, target: int, read: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        done = position >= target
        if not done and now - self._drawn_at < self.every_seconds:
            return
        self._drawn_at = now
        share = position / target if target else 1.0
        filled = int(share * BAR_WIDTH)
        rate = position / max(now - self.began, 1e-9)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:6.1%} "
            f"{position:,}/{target:,} events, {rate:,.0f}/s"
        )
        if done:
            self.stream.write("\n")
        self.stream.flush()

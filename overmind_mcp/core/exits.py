"""How a process ended, and how to say it."""

from __future__ import annotations

import signal
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a process ended: an exit code, or the signal that killed it (neither: nobody saw it end)."""

    code: int | None
    signal: int | None
    # Why nobody could see it end, when its runner knows (the machine it ran on died).
    lost: str | None = None

    @property
    def known(self) -> bool:
        return self.code is not None or self.signal is not None

    @property
    def returncode(self) -> int | None:
        """Shell-style: the exit code, or -N for death by signal N (as subprocess does)."""
        if self.signal is not None:
            return -self.signal
        return self.code

    def describe(self) -> str:
        if self.signal is not None:
            return f"killed by {signal_name(self.signal)}"
        if self.code is not None:
            return f"exited with code {self.code}"
        return f"lost: {self.lost}" if self.lost else "its exit status is unknown"


UNKNOWN_EXIT = ExitStatus(code=None, signal=None)


def signal_name(number: int) -> str:
    """SIGTERM for 15; real-time signals (SIGRTMIN+n) and unnamed ones have no `Signals` member."""
    try:
        return signal.Signals(number).name
    except ValueError:
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return f"SIGRTMIN+{number - signal.SIGRTMIN}"
        return f"signal {number}"

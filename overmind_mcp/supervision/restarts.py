"""When a mission that ended is started again: restart policies, as OTP supervisors have them.

`never` (the default) leaves an ended mission ended; `on-failure` restarts one that failed
(a crash, an error result, a stall); `always` restarts it whatever its outcome. A mission
ended on request (kill, timeout, budget, shutdown) is never restarted. At most
`max_restarts` restarts fall inside any `window_s` (a sliding window); the delay before
each doubles from `backoff_s` up to `backoff_max_s`, and goes back to `backoff_s` after a
run that lasted `stable_s` or more.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from overmind_mcp.core.spec import RestartMode


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    mode: RestartMode = "never"
    max_restarts: int = 3
    window_s: float = 300.0
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    stable_s: float = 60.0


@dataclass(slots=True)
class RestartHistory:
    """What one mission's restarts have been so far."""

    times: deque[float] = field(default_factory=deque)
    count: int = 0
    _level: int = 0

    def next_delay(
        self, policy: RestartPolicy, *, failed: bool, run_s: float, now: float | None = None
    ) -> float | None:
        """Seconds to wait before the next start, or None when the mission stays ended."""
        if policy.mode == "never" or (policy.mode == "on-failure" and not failed):
            return None
        now = time.monotonic() if now is None else now
        while self.times and now - self.times[0] > policy.window_s:
            self.times.popleft()
        if len(self.times) >= policy.max_restarts:
            return None
        if run_s >= policy.stable_s:
            self._level = 0
        delay = min(policy.backoff_s * 2**self._level, policy.backoff_max_s)
        self._level += 1
        self.times.append(now)
        self.count += 1
        return delay

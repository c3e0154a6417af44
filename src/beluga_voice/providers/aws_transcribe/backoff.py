"""When to try the next connection: exponential backoff with full jitter, inside a bounded outage.

Full jitter (a uniform draw between 0 and the exponential bound) spreads the reconnections of many
clients hit by the same fault, so a recovering service is not met by a synchronized storm.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from beluga_voice.errors import BelugaError


@dataclass(frozen=True)
class Backoff:
    """Delay before attempt ``n`` (1-based) of an outage: uniform in [0, min(cap, base * 2**(n-1)))."""

    base: float = 0.2
    cap: float = 5.0

    def bound(self, attempt: int) -> float:
        return float(min(self.cap, self.base * 2.0 ** max(0, attempt - 1)))

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.bound(attempt))


@dataclass
class Outage:
    """A run of failed connections, from the first failure until a connection proves healthy."""

    started: float
    attempts: int = 0
    errors: list[BelugaError] = field(default_factory=list)

    def exhausted(self, now: float, max_attempts: int, max_seconds: float) -> bool:
        return self.attempts >= max_attempts or now - self.started >= max_seconds

    def describe(self, now: float) -> str:
        return f"{self.attempts} connection attempt(s) in {now - self.started:.1f} s"

"""Fault injection for resilience tests: never on unless a FaultPlan (or a CLI flag) asks for it."""

from __future__ import annotations

import random
from dataclasses import dataclass

from beluga_voice.errors import ConfigurationError
from beluga_voice.providers.aws_transcribe.messages import HTTP_STATUS
from beluga_voice.server.exceptions import StreamException

RANDOM_EXCEPTIONS = ("InternalFailureException", "ServiceUnavailableException", "LimitExceededException")


@dataclass(frozen=True)
class StreamFaults:
    """The faults one stream meets, resolved from the plan."""

    drop_after: float | None = None
    exception_after: float | None = None
    exception: StreamException | None = None
    result_delay: float = 0.0
    refuse_status: int | None = None
    stall_after: float | None = None
    """Stop answering after this many seconds: no reading, no pongs, no results (a black hole)."""

    @property
    def any(self) -> bool:
        return (
            self.drop_after is not None
            or self.stall_after is not None
            or self.exception is not None
            or self.result_delay > 0
            or self.refuse_status is not None
        )

    def describe(self) -> str:
        parts = []
        if self.refuse_status is not None:
            parts.append(f"refuse={self.refuse_status}")
        if self.drop_after is not None:
            parts.append(f"drop@{self.drop_after:g}s")
        if self.stall_after is not None:
            parts.append(f"stall@{self.stall_after:g}s")
        if self.exception is not None:
            parts.append(f"{self.exception.name}@{self.exception_after or 0:g}s")
        if self.result_delay > 0:
            parts.append(f"delay={self.result_delay:g}s")
        return ",".join(parts) or "none"


@dataclass(frozen=True)
class FaultPlan:
    """Which faults to inject, and into which streams.

    Fixed faults (``drop_after``, ``stall_after``, ``exception_after``/``exception_name``,
    ``result_delay``, ``refuse_status``) hit every stream, or only the first ``streams`` of them. With ``seed``, each
    stream instead draws one fault at random (with probability ``random_rate``), reproducibly:
    stream number n always meets the same fault for the same seed.
    """

    drop_after: float | None = None
    exception_after: float | None = None
    exception_name: str = "InternalFailureException"
    exception_message: str | None = None
    result_delay: float = 0.0
    refuse_status: int | None = None
    stall_after: float | None = None
    streams: int | None = None
    seed: int | None = None
    random_rate: float = 0.5
    random_max_after: float = 10.0

    def __post_init__(self) -> None:
        for name in ("drop_after", "stall_after", "exception_after", "streams"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigurationError(f"fault {name} must not be negative, got {value}")
        if self.result_delay < 0:
            raise ConfigurationError(f"fault result_delay must not be negative, got {self.result_delay}")
        if self.refuse_status is not None and not 400 <= self.refuse_status <= 599:
            raise ConfigurationError(
                f"fault refuse_status must be an HTTP error status (400-599), got {self.refuse_status}"
            )
        if self.exception_name not in HTTP_STATUS:
            raise ConfigurationError(
                f"unknown exception {self.exception_name!r}; use one of {', '.join(sorted(HTTP_STATUS))}"
            )
        if not 0.0 <= self.random_rate <= 1.0:
            raise ConfigurationError(f"fault random_rate must be within 0-1, got {self.random_rate}")
        if self.random_max_after <= 0:
            raise ConfigurationError(f"fault random_max_after must be positive, got {self.random_max_after}")

    @property
    def enabled(self) -> bool:
        return self.seed is not None or self.for_stream(0).any

    def for_stream(self, number: int) -> StreamFaults:
        """The faults of the ``number``-th stream (counted from 0 in order of arrival)."""
        if self.streams is not None and number >= self.streams:
            return StreamFaults()
        if self.seed is not None:
            return self._random(number)
        exception = None
        if self.exception_after is not None:
            exception = StreamException.named(self.exception_name, self.exception_message)
        return StreamFaults(
            drop_after=self.drop_after,
            exception_after=self.exception_after,
            exception=exception,
            result_delay=self.result_delay,
            refuse_status=self.refuse_status,
            stall_after=self.stall_after,
        )

    def _random(self, number: int) -> StreamFaults:
        rng = random.Random(f"{self.seed}:{number}")
        if rng.random() >= self.random_rate:
            return StreamFaults()
        after = round(rng.uniform(0.5, self.random_max_after), 3)
        match rng.choice(("drop", "exception", "delay", "refuse", "stall")):
            case "drop":
                return StreamFaults(drop_after=after)
            case "stall":
                return StreamFaults(stall_after=after)
            case "exception":
                return StreamFaults(
                    exception_after=after, exception=StreamException.named(rng.choice(RANDOM_EXCEPTIONS))
                )
            case "delay":
                return StreamFaults(result_delay=round(rng.uniform(0.1, 2.0), 3))
            case _:
                return StreamFaults(refuse_status=rng.choice((500, 503, 429)))

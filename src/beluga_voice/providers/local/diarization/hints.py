"""What the user knows about the number of speakers, checked once where it is given."""

from __future__ import annotations

from dataclasses import dataclass

from beluga_voice.errors import ConfigurationError

MAX_SPEAKERS_LIMIT = 32  # beyond this a hint is surely a typo; clustering cost grows with it


@dataclass(frozen=True)
class SpeakerHints:
    """``num_speakers`` fixes the count; ``min_speakers``/``max_speakers`` bound it."""

    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None

    def __post_init__(self) -> None:
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SPEAKERS_LIMIT:
                raise ConfigurationError(
                    f"{name} must be a whole number from 1 to {MAX_SPEAKERS_LIMIT}, got {value!r}"
                )
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise ConfigurationError(
                f"min_speakers ({self.min_speakers}) is more than max_speakers ({self.max_speakers}); "
                "swap them or drop one"
            )
        if self.num_speakers is not None:
            low, high = self.min_speakers or 1, self.max_speakers or MAX_SPEAKERS_LIMIT
            if not low <= self.num_speakers <= high:
                raise ConfigurationError(
                    f"num_speakers={self.num_speakers} contradicts min_speakers/max_speakers "
                    f"({self.min_speakers}, {self.max_speakers}); give the exact count alone"
                )

    @property
    def low(self) -> int:
        """The fewest speakers allowed."""
        return self.num_speakers or self.min_speakers or 1

    @property
    def high(self) -> int | None:
        """The most speakers allowed (``None``: no bound given)."""
        return self.num_speakers or self.max_speakers

    @property
    def online_cap(self) -> int | None:
        """The bound a live stream can honour: labels are given as speech arrives, so only a cap."""
        return self.high

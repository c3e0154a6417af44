"""Server-wide quotas: concurrent streams and one live stream per session id."""

from __future__ import annotations

from typing import Protocol

from beluga_voice.server.exceptions import StreamException


class Terminable(Protocol):
    session_id: str

    def terminate(self, exception: StreamException) -> None:
        """End the stream with this exception frame (from outside the stream's own task)."""


def too_many_streams(limit: int) -> StreamException:
    return StreamException(
        "LimitExceededException",
        f"You have reached your limit of {limit} concurrent streams. Wait for a stream to end and try again.",
    )


def stream_too_long(seconds: float) -> StreamException:
    return StreamException(
        "LimitExceededException",
        f"Your stream has exceeded the maximum duration of {seconds:g} seconds. Start a new stream to continue.",
    )


class StreamRegistry:
    """Counts live streams; a new stream with a live stream's session id ends the older one."""

    def __init__(self, max_streams: int) -> None:
        self.max_streams = max_streams
        self._live: dict[str, Terminable] = {}
        self._count = 0
        self.started = 0

    @property
    def live(self) -> int:
        return self._count

    def is_full(self) -> bool:
        return self._count >= self.max_streams

    def register(self, stream: Terminable) -> None:
        """Admit a stream or raise LimitExceededException; a same-session stream gets ConflictException."""
        if self.is_full():
            raise too_many_streams(self.max_streams)
        previous = self._live.get(stream.session_id)
        if previous is not None:
            previous.terminate(StreamException.named("ConflictException"))
        self._live[stream.session_id] = stream
        self._count += 1
        self.started += 1

    def unregister(self, stream: Terminable) -> None:
        if self._live.get(stream.session_id) is stream:
            del self._live[stream.session_id]
        self._count -= 1

    def streams(self) -> list[Terminable]:
        return list(self._live.values())

"""``FallbackSTT``: one stream that moves to the next provider when one fails for good.

``FallbackSTT([AWSTranscribeSTT(...), LocalSTT()])`` is itself an :class:`STTProvider`, so the
application's code does not change. The first provider runs the stream (with its own reconnection);
if it raises, the stream continues on the next one with the same guarantees as a reconnection: the
audio not yet covered by finals (bounded by ``replay_seconds``) is replayed to it, its results are
moved onto the same media timeline, finals already delivered are not delivered again, the failed
provider's unfinished partials are withdrawn (an empty partial with the same ``result_id``), and
speaker labels keep their names (see :mod:`beluga_voice.stt.timeline`).

The application's audio is read once, by a pump task, so a provider that fails (and is cancelled)
never breaks the application's audio source; an error *of* that source is re-raised, never a reason
to switch providers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from beluga_voice.aio import as_async_iter
from beluga_voice.audio.chunker import DEFAULT_CHUNK_MS, chunk_bytes, rechunk
from beluga_voice.audio.pcm import PCM_SAMPLE_WIDTH
from beluga_voice.errors import BelugaError, ConfigurationError
from beluga_voice.stt.model import TranscriptResult
from beluga_voice.stt.provider import AudioStream, ConnectionEvent, ConnectionListener, STTProvider
from beluga_voice.stt.timeline import DEFAULT_REPLAY_SECONDS, StreamTimeline, TimelineStats

logger = logging.getLogger("beluga_voice.fallback")

FEED_CHUNKS = 50
"""Chunks (5 s at 100 ms) the pump may run ahead of the provider before it waits."""


@dataclass
class FallbackStats:
    """What the last ``stream()`` of a :class:`FallbackSTT` did."""

    timeline: TimelineStats = field(default_factory=TimelineStats, repr=False)
    providers: list[str] = field(default_factory=list)
    """Names of the providers that ran, in order (more than one: a fallback happened)."""
    errors: list[str] = field(default_factory=list)
    """Why each provider that failed was left (error codes)."""
    last_error: BaseException | None = field(default=None, repr=False)

    @property
    def fallbacks(self) -> int:
        return max(0, len(self.providers) - 1)

    @property
    def replayed_seconds(self) -> float:
        return self.timeline.replayed_seconds


class _SourceFailed(Exception):
    """Wraps an error of the application's audio source on its way through a provider."""


class _Pump:
    """Reads the application's audio once and hands it to one provider feed at a time."""

    def __init__(
        self, audio: AudioStream, chunk_size: int, frame_bytes: int, timeline: StreamTimeline
    ) -> None:
        self._audio = audio
        self._chunk_size = chunk_size
        self._frame_bytes = frame_bytes
        self._timeline = timeline
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(FEED_CHUNKS)
        self.error: BaseException | None = None
        self.done = False
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for chunk in rechunk(as_async_iter(self._audio), self._chunk_size):
                chunk = chunk[: len(chunk) - len(chunk) % self._frame_bytes]
                if chunk:
                    queue = self._queue
                    self._timeline.record(chunk)
                    await queue.put(chunk)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.error = exc
        self.done = True
        await self._queue.put(None)

    def feed(self, replay: list[bytes]) -> AsyncIterator[bytes]:
        """The audio for the next provider: the replay, then live audio until the source ends.

        Chunks the pump reads from now on go to this feed only; the previous feed is abandoned.
        """
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(FEED_CHUNKS)
        if self.done:
            queue.put_nowait(None)
        old, self._queue = self._queue, queue
        # Unblock a pump waiting on the abandoned feed: what it holds was recorded before the
        # replay was taken, so it is in ``replay`` already.
        while not old.empty():
            old.get_nowait()
        return self._read(replay, queue)

    async def _read(self, replay: list[bytes], queue: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
        for chunk in replay:
            yield chunk
        while (live := await queue.get()) is not None:
            yield live
        if self.error is not None:
            raise _SourceFailed() from self.error

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def _falls_back(error: BaseException) -> bool:
    return isinstance(error, Exception)


class FallbackSTT(STTProvider):
    """Providers tried in order within one stream: the next takes over when one fails.

    All providers must take the same PCM (``sample_rate`` and ``channels``); build the fallback
    with the primary's rate, e.g. ``LocalSTT(sample_rate=aws.sample_rate)``. ``fall_back_on``
    decides which errors move the stream on (default: any error of the provider; never an error of
    the application's audio source, never cancellation). Each ``stream()`` starts again with the
    first provider.

    The replay policy is the AWS provider's (``ReconnectPolicy``): the replay starts where the last
    final ended (``overlap_seconds=0``: an utterance's pause, so the next recogniser decodes the
    open utterance whole instead of a fragment of a word already answered, where Whisper-like
    recognisers invent words), after ``speaker_sample_seconds`` of each known speaker.
    """

    name: ClassVar[str] = "fallback"

    def __init__(
        self,
        providers: Sequence[STTProvider],
        *,
        replay_seconds: float = DEFAULT_REPLAY_SECONDS,
        overlap_seconds: float = 0.0,
        speaker_sample_seconds: float = 2.0,
        fall_back_on: Callable[[BaseException], bool] = _falls_back,
    ) -> None:
        if not providers:
            raise ConfigurationError(
                "FallbackSTT needs at least one provider, e.g. FallbackSTT([aws, local])"
            )
        first = providers[0]
        for provider in providers[1:]:
            if (provider.sample_rate, provider.channels) != (first.sample_rate, first.channels):
                raise ConfigurationError(
                    f"every provider of a FallbackSTT must take the same audio: {first.name} takes "
                    f"{first.sample_rate} Hz x {first.channels} channel(s), {provider.name} takes "
                    f"{provider.sample_rate} Hz x {provider.channels}; build {provider.name} with "
                    f"sample_rate={first.sample_rate}"
                )
        self.providers = list(providers)
        self._replay_seconds = replay_seconds
        self._overlap_seconds = min(overlap_seconds, replay_seconds / 2)
        self._voice_seconds = speaker_sample_seconds
        self._fall_back_on = fall_back_on
        self.last_stream_stats: FallbackStats | None = None

    @property
    def sample_rate(self) -> int:
        return self.providers[0].sample_rate

    @property
    def channels(self) -> int:
        return self.providers[0].channels

    async def stream(
        self, audio: AudioStream, *, on_connection_event: ConnectionListener | None = None
    ) -> AsyncIterator[TranscriptResult]:
        """Results on one timeline, whichever provider produced them; ``fallback`` events on a switch."""
        frame_bytes = PCM_SAMPLE_WIDTH * self.channels
        timeline = StreamTimeline(
            self.sample_rate * frame_bytes,
            self._replay_seconds,
            self._overlap_seconds,
            self._voice_seconds,
            frame_bytes,
        )
        stats = FallbackStats(timeline.stats)
        self.last_stream_stats = stats
        pump = _Pump(
            audio, chunk_bytes(self.sample_rate, DEFAULT_CHUNK_MS, self.channels), frame_bytes, timeline
        )
        try:
            for index, provider in enumerate(self.providers):
                replayed_before = timeline.stats.replayed_seconds
                feed = pump.feed(timeline.begin_connection())
                stats.providers.append(provider.name)
                if index:
                    self._emit(
                        on_connection_event,
                        ConnectionEvent(
                            "fallback",
                            attempt=index + 1,
                            error=_as_beluga(stats.last_error),
                            replayed_seconds=timeline.stats.replayed_seconds - replayed_before,
                            detail=f"{self.providers[index - 1].name} -> {provider.name}",
                        ),
                    )
                try:
                    async for result in provider.stream(feed, on_connection_event=on_connection_event):
                        for placed in timeline.place([result]):
                            yield placed
                    return
                except _SourceFailed as wrapped:
                    raise wrapped.__cause__ or wrapped from None
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if pump.error is not None:  # the application's audio failed, not the provider
                        raise pump.error from None
                    if index == len(self.providers) - 1 or not self._fall_back_on(exc):
                        raise
                    logger.warning("provider %s failed (%s); continuing on the next one", provider.name, exc)
                    stats.errors.append(exc.code if isinstance(exc, BelugaError) else type(exc).__name__)
                    stats.last_error = exc
                    for retraction in timeline.abandon_connection():
                        yield retraction
        finally:
            await pump.close()

    async def aclose(self) -> None:
        for provider in self.providers:
            await provider.aclose()

    @staticmethod
    def _emit(listener: ConnectionListener | None, event: ConnectionEvent) -> None:
        if listener is None:
            return
        try:
            listener(event)
        except Exception:  # a listener's bug must not kill the stream
            logger.exception("connection event listener failed")

    def __repr__(self) -> str:
        return f"FallbackSTT([{', '.join(p.name for p in self.providers)}])"


def _as_beluga(error: BaseException | None) -> BelugaError | None:
    return error if isinstance(error, BelugaError) else None

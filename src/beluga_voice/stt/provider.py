"""The one STT provider interface: one-shot and streaming, async first, with a sync convenience."""

from __future__ import annotations

import asyncio
import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Literal

from beluga_voice.audio.chunker import DEFAULT_CHUNK_MS, chunk_bytes, iter_chunks
from beluga_voice.audio.pcm import Audio
from beluga_voice.audio.reader import read_audio
from beluga_voice.errors import BelugaError
from beluga_voice.stt.model import Transcript, TranscriptResult

AudioInput = Audio | bytes | str | os.PathLike[str]
"""A file path (or ``"-"``), decoded :class:`Audio`, or s16le PCM bytes at the provider's rate."""

AudioStream = AsyncIterable[bytes] | Iterable[bytes]
"""s16le PCM pieces of any size at the provider's ``sample_rate`` and ``channels``."""

ConnectionEventKind = Literal[
    "connected", "disconnected", "reconnecting", "reconnected", "fallback", "closed"
]


@dataclass(frozen=True)
class ConnectionEvent:
    """What happened to a provider's connection, for applications that show or count it."""

    kind: ConnectionEventKind
    attempt: int = 0
    error: BelugaError | None = None
    downtime: float = 0.0
    replayed_seconds: float = 0.0
    detail: str = ""


ConnectionListener = Callable[[ConnectionEvent], None]


class STTProvider(ABC):
    """Speech-to-text: ``transcribe(audio) -> text`` and ``stream(chunks) -> results``.

    Streaming input is s16le PCM at ``self.sample_rate`` with ``self.channels`` interleaved channels;
    pieces may be of any size (providers re-chunk). Results are partial and final
    :class:`TranscriptResult` objects on one continuous media timeline.
    """

    name: ClassVar[str] = "provider"

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """The sample rate of the PCM that ``stream`` expects."""

    @property
    def channels(self) -> int:
        """The channel count of the PCM that ``stream`` expects (2 only for channel identification)."""
        return 1

    @abstractmethod
    def stream(
        self, audio: AudioStream, *, on_connection_event: ConnectionListener | None = None
    ) -> AsyncIterator[TranscriptResult]:
        """Transcribe a live stream; ends after the last final once ``audio`` is exhausted."""

    async def transcribe_full(self, audio: AudioInput) -> Transcript:
        """Transcribe a whole recording into a :class:`Transcript` (finals only)."""
        pcm, duration = self.prepare(audio)
        transcript = Transcript(provider=self.name, duration=duration)
        size = chunk_bytes(self.sample_rate, DEFAULT_CHUNK_MS, self.channels)
        async for result in self.stream(iter_chunks(pcm, size)):
            transcript.add(result)
        transcript.language_code = transcript.dominant_language()
        return transcript

    async def transcribe(self, audio: AudioInput) -> str:
        """The guide's one-shot call: audio in, transcript text out."""
        return (await self.transcribe_full(audio)).text

    def transcribe_sync(self, audio: AudioInput) -> str:
        """``transcribe`` for scripts without an event loop."""
        return asyncio.run(self.transcribe(audio))

    def prepare(self, audio: AudioInput) -> tuple[bytes, float]:
        """Any accepted input as PCM in this provider's format, with its duration in seconds."""
        if isinstance(audio, bytes):
            decoded = Audio.from_pcm16(audio, self.sample_rate, self.channels)
        elif isinstance(audio, Audio):
            decoded = audio
        else:
            decoded = read_audio(Path(audio) if str(audio) != "-" else "-")
        converted = decoded.convert(self.sample_rate, self.channels)
        return converted.to_pcm16(), converted.duration

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release models and connections; the default holds none."""

    async def __aenter__(self) -> STTProvider:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

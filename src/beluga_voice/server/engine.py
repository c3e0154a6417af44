"""The engine behind the server: a factory that builds one STT provider per stream (and channel).

The default runs the embedded local engine, loaded once and shared by every stream. ``echo`` is the
protocol path alone: it recognises nothing and reports how much audio arrived, for load tests and
for trying a client without a model.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from beluga_voice.aio import as_async_iter
from beluga_voice.audio.pcm import PCM_SAMPLE_WIDTH
from beluga_voice.errors import ConfigurationError, ModelNotFoundError
from beluga_voice.providers.aws_transcribe.config import TranscribeConfig
from beluga_voice.stt.model import TranscriptResult, Word, join_words
from beluga_voice.stt.provider import AudioStream, ConnectionListener, STTProvider

EngineFactory = Callable[[TranscribeConfig], STTProvider]
"""Builds the provider for one mono channel of one stream, from the stream's parameters."""


class EchoSTT(STTProvider):
    """No recognition: one word per ``word_seconds`` of audio, a final every ``segment_seconds``.

    Results are built like a real engine's (growing partials sharing a ResultId, then a final), so
    the whole protocol path runs at the cost of the server alone.
    """

    name = "echo"

    def __init__(self, sample_rate: int, word_seconds: float = 0.5, segment_seconds: float = 2.0) -> None:
        self._rate = sample_rate
        self.word_seconds = word_seconds
        self.segment_seconds = segment_seconds

    @property
    def sample_rate(self) -> int:
        return self._rate

    async def stream(
        self, audio: AudioStream, *, on_connection_event: ConnectionListener | None = None
    ) -> AsyncIterator[TranscriptResult]:
        bytes_per_second = self._rate * PCM_SAMPLE_WIDTH
        received = 0
        words: list[Word] = []
        segment = 0
        segment_start = 0.0
        async for chunk in as_async_iter(audio):
            received += len(chunk)
            now = received / bytes_per_second
            while now - segment_start >= (len(words) + 1) * self.word_seconds:
                start = segment_start + len(words) * self.word_seconds
                words.append(Word("audio", round(start, 3), round(start + self.word_seconds, 3), 1.0))
                if len(words) * self.word_seconds >= self.segment_seconds:
                    yield self._result(segment, words, final=True)
                    segment, segment_start, words = segment + 1, words[-1].end, []
                else:
                    yield self._result(segment, words, final=False)
        if words:
            yield self._result(segment, words, final=True)

    def _result(self, segment: int, words: list[Word], *, final: bool) -> TranscriptResult:
        return TranscriptResult(
            result_id=f"echo-{segment:08d}",
            is_partial=not final,
            start=words[0].start,
            end=words[-1].end,
            text=join_words(words),
            words=tuple(words),
        )


def echo_engine(config: TranscribeConfig) -> STTProvider:
    return EchoSTT(config.sample_rate)


class LocalEngineFactory:
    """Builds LocalSTT streams on one LocalEngine, loaded on first use and shared by all streams."""

    name = "local"

    def __init__(self, **engine_options: Any) -> None:
        self._options = engine_options
        self._engine: Any = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Any:
        with self._lock:
            if self._engine is None:
                self._engine = _local_module().LocalEngine(**self._options)
            return self._engine

    async def preload(self) -> None:
        """Load the model before the first stream arrives (so the first client waits for nothing)."""
        await asyncio.to_thread(lambda: self.engine)

    def __call__(self, config: TranscribeConfig) -> STTProvider:
        engine = self.engine
        language_code, identify, options = (
            config.language_code,
            config.identifies_language,
            config.language_options,
        )
        if identify and not engine.files.multilingual:
            language_code, identify, options = english_choice(config, engine.files.name), False, ()
        try:
            stt: STTProvider = _local_module().LocalSTT(
                engine=engine,
                sample_rate=config.sample_rate,
                show_speaker_label=config.show_speaker_label,
                language_code=language_code,
                identify_language=identify,
                language_options=options,
            )
        except ModelNotFoundError as exc:  # refused at the handshake (BadRequestException), not mid-stream
            raise ConfigurationError(
                "show-speaker-label=true needs the speaker model, which this server does not have "
                f"({exc.message}) Install it where beluga serve runs and restart it, or open the stream "
                "without show-speaker-label."
            ) from exc
        return stt


def engine_name(factory: EngineFactory) -> str:
    """The provider name metrics carry for a factory's streams: ``local``, ``echo``, or its own.

    A factory may set a ``name`` attribute; a plain function is named after itself, without an
    ``_engine`` suffix (``echo_engine`` -> ``echo``).
    """
    name = getattr(factory, "name", None) or getattr(factory, "__name__", None) or type(factory).__name__
    return str(name).removesuffix("_engine")


def english_choice(config: TranscribeConfig, model_name: str) -> str:
    """The option an English-only model transcribes in when asked to identify the language.

    Such a model cannot tell languages apart: it assumes English, so the options must include an
    English dialect (the preferred language when it is one).
    """
    preferred = config.preferred_language
    if preferred and preferred.startswith("en-"):
        return preferred
    english = [code for code in config.language_options if code.startswith("en-")]
    if not english:
        raise ConfigurationError(
            f"The server's model ({model_name}) is English-only, so language identification can only "
            f"answer English: include an English dialect in language-options (got "
            f"{','.join(config.language_options)}), or run beluga serve with a multilingual model."
        )
    return english[0]


def _local_module() -> Any:
    # Imported on first use: the model stack is heavy and the echo engine does not need it.
    return importlib.import_module("beluga_voice.providers.local")


ENGINES: dict[str, Callable[[], EngineFactory]] = {
    "local": LocalEngineFactory,
    "echo": lambda: echo_engine,
}

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
    """Builds LocalSTT streams on shared LocalEngines, each loaded on first use.

    Without ``model_path`` two models may serve: tiny.en for English streams (the default) and the
    multilingual Whisper base for streams that identify the language or name another one, as the
    local provider chooses. With ``model_path`` that model serves every stream. The multilingual
    model loads on the first stream that needs it (a second or two, once), or at start with
    ``preload_multilingual=True`` (``beluga serve`` does that when the model is installed).
    """

    name = "local"

    def __init__(self, *, preload_multilingual: bool = False, **engine_options: Any) -> None:
        self._options = engine_options
        self._preload_multilingual = preload_multilingual
        self._engines: dict[bool, Any] = {}
        self._lock = threading.Lock()

    @property
    def engine(self) -> Any:
        """The default engine: ``model_path``'s, or tiny.en."""
        return self._loaded(multilingual=False)

    def _loaded(self, *, multilingual: bool) -> Any:
        with self._lock:
            engine = self._engines.get(multilingual)
            if engine is None:
                local = _local_module()
                options = dict(self._options)
                if multilingual:
                    options["model_path"] = local.multilingual_model_path()
                # Plain settings share the process-wide engine with every LocalSTT (one model in memory).
                shareable = set(options) <= {"model_path", "cpu_threads"}
                engine = local.shared_engine(**options) if shareable else local.LocalEngine(**options)
                self._engines[multilingual] = engine
            return engine

    async def preload(self) -> None:
        """Load the model(s) before the first stream arrives (so the first client waits for nothing)."""
        await asyncio.to_thread(lambda: self.engine)
        if self._preload_multilingual and "model_path" not in self._options:
            await asyncio.to_thread(lambda: self._loaded(multilingual=True))

    def engine_for(self, config: TranscribeConfig) -> Any:
        """The engine a stream's language settings need (see the class docstring)."""
        check_languages(config)
        if "model_path" in self._options or not _local_module().needs_multilingual(
            config.language_code, config.identify_language, config.identify_multiple_languages
        ):
            return self.engine
        try:
            return self._loaded(multilingual=True)
        except ModelNotFoundError as exc:
            raise ConfigurationError(
                f"This server cannot transcribe or identify languages other than English: {exc.message}"
            ) from exc

    def __call__(self, config: TranscribeConfig) -> STTProvider:
        engine = self.engine_for(config)
        language_code, identify, multiple, options = (
            config.language_code,
            config.identify_language,
            config.identify_multiple_languages,
            config.language_options,
        )
        preferred = config.preferred_language
        if (identify or multiple) and not engine.files.multilingual:
            language_code = english_choice(config, engine.files.name)
            identify, multiple, options, preferred = False, False, (), None
        try:
            stt: STTProvider = _local_module().LocalSTT(
                engine=engine,
                sample_rate=config.sample_rate,
                show_speaker_label=config.show_speaker_label,
                language_code=language_code,
                identify_language=identify,
                identify_multiple_languages=multiple,
                language_options=options,
                preferred_language=preferred,
            )
        except ModelNotFoundError as exc:  # refused at the handshake (BadRequestException), not mid-stream
            raise ConfigurationError(
                "show-speaker-label=true needs the speaker model, which this server does not have "
                f"({exc.message}) Install it where beluga serve runs and restart it, or open the stream "
                "without show-speaker-label."
            ) from exc
        return stt


def check_languages(config: TranscribeConfig) -> None:
    """Refuse, in the service's words, a language the local engine cannot transcribe."""
    supported = _local_module().supported_service_codes()
    asked = [*config.language_options, *([config.language_code] if config.language_code else [])]
    unsupported = [code for code in asked if code not in supported]
    if unsupported:
        raise ConfigurationError(
            f"The language(s) {', '.join(unsupported)} are not supported by this server's engine. "
            f"Supported languages: [{', '.join(supported)}]"
        )


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

"""``LocalSTT``: the default provider, offline speech-to-text with speaker labels on this machine."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import ClassVar

from beluga_voice.audio.pcm import Audio, check_sample_rate
from beluga_voice.audio.reader import read_audio
from beluga_voice.providers.local.diarization.clustering import DEFAULT_THRESHOLD, SpeakerClustering
from beluga_voice.providers.local.diarization.turns import Turn, embed_turns
from beluga_voice.providers.local.engine import DEFAULT_CPU_THREADS, SAMPLE_RATE, Decoded, LocalEngine
from beluga_voice.providers.local.executor import ROUTINE
from beluga_voice.providers.local.languages import LanguagePlan, plan_languages
from beluga_voice.providers.local.model_files import WhisperModelFiles, inspect_model
from beluga_voice.providers.local.streaming import StreamSession, StreamSettings, audio_to_samples
from beluga_voice.stt.model import Transcript, TranscriptResult, join_words
from beluga_voice.stt.provider import AudioInput, AudioStream, ConnectionListener, STTProvider

_engines: dict[tuple[str, int], LocalEngine] = {}
_engines_lock = threading.Lock()


def shared_engine(
    model_path: str | os.PathLike[str] | None = None, *, cpu_threads: int = DEFAULT_CPU_THREADS
) -> LocalEngine:
    """The process-wide engine for a model directory, loaded on first use (loading takes a while)."""
    path = str(inspect_model(model_path).path.resolve())
    with _engines_lock:
        engine = _engines.get((path, cpu_threads))
        if engine is None:
            engine = LocalEngine(model_path, cpu_threads=cpu_threads)
            _engines[(path, cpu_threads)] = engine
        return engine


class LocalSTT(STTProvider):
    """Offline streaming speech-to-text (faster-whisper) with optional speaker diarization.

    Pass ``engine`` to share one loaded model among many providers (a server does); otherwise a
    process-wide engine for ``model_path`` is loaded on first use. ``sample_rate`` is the rate of
    the PCM given to :meth:`stream`; other rates than 16 kHz are resampled.
    """

    name: ClassVar[str] = "local"
    _batch_ids = itertools.count(1)

    def __init__(
        self,
        *,
        engine: LocalEngine | None = None,
        model_path: str | os.PathLike[str] | None = None,
        sample_rate: int = SAMPLE_RATE,
        language_code: str | None = None,
        show_speaker_label: bool = False,
        identify_language: bool = False,
        language_options: Sequence[str] = (),
        partial_interval: float = 0.6,
        end_silence: float = 0.6,
        sentence_end_silence: float = 0.3,
        max_segment: float = 15.0,
        beam_size: int | None = None,
        cpu_threads: int = DEFAULT_CPU_THREADS,
        vad_threshold: float = 0.5,
        use_context: bool = False,
        speaker_threshold: float = DEFAULT_THRESHOLD,
        max_speakers: int | None = None,
    ) -> None:
        check_sample_rate(sample_rate, "sample_rate")
        self._engine = engine
        self._model_path = model_path
        self._cpu_threads = cpu_threads
        files: WhisperModelFiles = engine.files if engine is not None else inspect_model(model_path)
        self._plan: LanguagePlan = plan_languages(files, language_code, identify_language, language_options)
        self._sample_rate = sample_rate
        self.show_speaker_label = show_speaker_label
        self.settings = StreamSettings(
            partial_interval=partial_interval,
            end_silence=end_silence,
            sentence_end_silence=sentence_end_silence,
            max_segment=max_segment,
            vad_threshold=vad_threshold,
            use_context=use_context,
            beam_size=beam_size,
            speaker_threshold=speaker_threshold,
            max_speakers=max_speakers,
        )

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    async def engine(self) -> LocalEngine:
        """The engine in use, loading the shared one off the event loop if needed."""
        if self._engine is None:
            self._engine = await asyncio.to_thread(
                shared_engine, self._model_path, cpu_threads=self._cpu_threads
            )
        return self._engine

    async def stream(
        self, audio: AudioStream, *, on_connection_event: ConnectionListener | None = None
    ) -> AsyncIterator[TranscriptResult]:
        """Partials and finals for s16le mono PCM at ``sample_rate``; ends after the last final.

        ``on_connection_event`` is accepted for interface parity; a local engine has no connection.
        """
        session = StreamSession(
            await self.engine(),
            self.settings,
            self._plan,
            input_rate=self._sample_rate,
            speakers=self.show_speaker_label,
        )
        async for result in session.run(audio):
            yield result

    async def transcribe_full(self, audio: AudioInput) -> Transcript:
        """A whole recording in one pass (VAD, 30 s windows, running context): faster than
        streaming it, with the same result model and the same speaker labelling."""
        if self._plan.fixed is None:  # per-utterance language identification lives in the stream
            return await super().transcribe_full(audio)
        samples = audio_to_samples(_decoded(audio, self._sample_rate))
        engine = await self.engine()
        language, settings = self._plan.fixed, self.settings
        vad = {
            "threshold": settings.vad_threshold,
            "min_silence_duration_ms": round(settings.end_silence * 1000),
            "speech_pad_ms": round(settings.pre_roll * 1000),
            "max_speech_duration_s": settings.max_segment,
        }
        speakers = self.show_speaker_label

        def work() -> list[tuple[Decoded, list[Turn]]]:
            out: list[tuple[Decoded, list[Turn]]] = []
            for decoded in engine.transcribe_long(
                samples, language=language, vad_parameters=vad, beam_size=settings.beam_size
            ):
                turns: list[Turn] = []
                if speakers:
                    turns = list(embed_turns(engine.speaker_encoder(), samples, 0.0, decoded.words))
                out.append((decoded, turns))
            return out

        pieces = await engine.run(work, ROUTINE)
        clusters = SpeakerClustering(settings.speaker_threshold, max_speakers=settings.max_speakers)
        batch = next(self._batch_ids)
        transcript = Transcript(
            provider=self.name, duration=samples.size / SAMPLE_RATE, language_code=self._plan.locale
        )
        for index, (decoded, turns) in enumerate(pieces, start=1):
            words = list(decoded.words)
            if speakers:
                words = clusters.label_words(words, turns)
            transcript.add(
                TranscriptResult(
                    result_id=f"local-batch-{batch}-{index}",
                    is_partial=False,
                    start=round(words[0].start, 3),
                    end=round(words[-1].end, 3),
                    text=join_words(words),
                    words=tuple(words),
                    language_code=self._plan.locale,
                )
            )
        return transcript

    def __repr__(self) -> str:
        where = self._engine.model_path if self._engine else (self._model_path or "default")
        return f"LocalSTT(model={str(where)!r}, sample_rate={self._sample_rate}, speakers={self.show_speaker_label})"


def _decoded(audio: AudioInput, sample_rate: int) -> Audio:
    if isinstance(audio, Audio):
        return audio
    if isinstance(audio, bytes):
        return Audio.from_pcm16(audio, sample_rate, 1, "<bytes>")
    return read_audio(Path(audio) if str(audio) != "-" else "-")

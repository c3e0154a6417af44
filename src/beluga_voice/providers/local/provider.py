"""``LocalSTT``: the default provider, offline speech-to-text with speaker labels on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from beluga_voice.audio.chunker import DEFAULT_CHUNK_MS, chunk_bytes, iter_chunks
from beluga_voice.audio.pcm import Audio, check_sample_rate, float_to_pcm16
from beluga_voice.audio.reader import read_audio
from beluga_voice.providers.local.buffer import FloatArray
from beluga_voice.providers.local.diarization.availability import require_speaker_model
from beluga_voice.providers.local.diarization.clustering import DEFAULT_THRESHOLD
from beluga_voice.providers.local.diarization.hints import SpeakerHints
from beluga_voice.providers.local.diarization.offline import OfflineDiarizer, label_words
from beluga_voice.providers.local.diarization.regions import fit_to_speech, speech_regions
from beluga_voice.providers.local.engine import DEFAULT_CPU_THREADS, FILE_BEAM_SIZE, SAMPLE_RATE, LocalEngine
from beluga_voice.providers.local.executor import ROUTINE
from beluga_voice.providers.local.languages import LanguagePlan, needs_multilingual, plan_languages
from beluga_voice.providers.local.model_files import WhisperModelFiles, inspect_model, multilingual_model_path
from beluga_voice.providers.local.streaming import StreamSession, StreamSettings
from beluga_voice.stt.model import LanguageScore, SpeakerTurn, Transcript, TranscriptResult, join_words
from beluga_voice.stt.provider import AudioInput, AudioStream, ConnectionListener, STTProvider

_engines: dict[tuple[str, int], LocalEngine] = {}
_engines_lock = threading.Lock()


def shared_engine(
    model_path: str | os.PathLike[str] | None = None,
    *,
    cpu_threads: int = DEFAULT_CPU_THREADS,
    allow_download: bool = False,
) -> LocalEngine:
    """The process-wide engine for a model directory, loaded on first use (loading takes a while)."""
    files = inspect_model(model_path, allow_download=allow_download)
    key = (files.download_name or str(files.path.resolve()), cpu_threads)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = LocalEngine(model_path, cpu_threads=cpu_threads, allow_download=allow_download)
            _engines[key] = engine
        return engine


_DETECT_VAD = {"threshold": 0.5, "min_silence_duration_ms": 600, "speech_pad_ms": 250}
"""Silero settings that find the speech a whole recording's language is identified on."""


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
        identify_multiple_languages: bool = False,
        preferred_language: str | None = None,
        partial_interval: float = 0.6,
        end_silence: float = 0.6,
        sentence_end_silence: float = 0.3,
        max_segment: float = 15.0,
        beam_size: int | None = None,
        cpu_threads: int = DEFAULT_CPU_THREADS,
        vad_threshold: float = 0.5,
        use_context: bool = False,
        speaker_threshold: float = DEFAULT_THRESHOLD,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        allow_download: bool = False,
    ) -> None:
        check_sample_rate(sample_rate, "sample_rate")
        if engine is None and model_path is None:
            # English alone: tiny.en (faster, better on English); anything else: the multilingual model.
            multilingual = needs_multilingual(language_code, identify_language, identify_multiple_languages)
            model_path = multilingual_model_path() if multilingual else None
        self._engine = engine
        self._model_path = model_path
        self._cpu_threads = cpu_threads
        self._allow_download = allow_download
        files: WhisperModelFiles = (
            engine.files if engine is not None else inspect_model(model_path, allow_download=allow_download)
        )
        self._plan: LanguagePlan = plan_languages(
            files,
            language_code,
            identify_language,
            language_options,
            identify_multiple_languages=identify_multiple_languages,
            preferred_language=preferred_language,
        )
        self._sample_rate = sample_rate
        self.show_speaker_label = show_speaker_label
        self.speaker_hints = SpeakerHints(num_speakers, min_speakers, max_speakers)
        if show_speaker_label:  # said now, not after the audio has been read or half streamed
            require_speaker_model(engine.speaker_model_path if engine is not None else None)
        self.settings = StreamSettings(
            partial_interval=partial_interval,
            end_silence=end_silence,
            sentence_end_silence=sentence_end_silence,
            max_segment=max_segment,
            vad_threshold=vad_threshold,
            use_context=use_context,
            beam_size=beam_size,
            speaker_threshold=speaker_threshold,
            max_speakers=self.speaker_hints.online_cap,
        )

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    async def engine(self) -> LocalEngine:
        """The engine in use, loading the shared one off the event loop if needed."""
        if self._engine is None:
            self._engine = await asyncio.to_thread(
                shared_engine,
                self._model_path,
                cpu_threads=self._cpu_threads,
                allow_download=self._allow_download,
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
        async with contextlib.aclosing(session.run(audio)) as results:  # stops the session if we stop
            async for result in results:
                yield result

    async def transcribe_full(self, audio: AudioInput) -> Transcript:
        """A whole recording in file mode: see :meth:`transcribe_file`."""
        return await self.transcribe_file(audio)

    async def transcribe_file(
        self, audio: AudioInput, *, on_progress: Callable[[float], None] | None = None
    ) -> Transcript:
        """A whole recording in file mode: the same words, times and labels on every run.

        Words come from faster-whisper's own batch path (its VAD filter, 30 s windows with running
        context, beam 5), their times kept inside Silero's speech regions; speakers from the offline
        diarizer over the whole recording (clustering of every window at once, the speaker hints
        honoured). Both run at once on the engine's workers; neither reads the clock. With
        ``identify_language`` the recording's language is first identified among the options on its
        first 30 s of speech; ``identify_multiple_languages`` takes the stream's path, utterance by
        utterance.
        ``on_progress`` gets the seconds transcribed so far, on the event loop.
        """
        samples = audio_to_samples(_decoded(audio, self._sample_rate))
        duration = samples.size / SAMPLE_RATE
        plan = self._plan
        if plan.fixed is None and (not plan.candidates or plan.per_utterance):
            return await self._transcribe_by_streaming(samples, duration)
        engine = await self.engine()
        locale, scores = plan.locale, tuple[LanguageScore, ...]()
        if plan.fixed is not None:
            chosen = plan.fixed
        else:  # one language for the recording, as a stream keeps its decision
            chosen, found = await engine.run(
                lambda: engine.detect_recording_language(samples, tuple(plan.candidates), _DETECT_VAD), ROUTINE
            )
            locale = plan.locale_for(chosen)
            scores = tuple(LanguageScore(plan.locale_for(code), round(p, 4)) for code, p in found)
        beam = self.settings.beam_size or FILE_BEAM_SIZE
        loop = asyncio.get_running_loop()

        def progress(seconds: float) -> None:
            if on_progress is not None:
                loop.call_soon_threadsafe(on_progress, seconds)

        # The VAD first (a fraction of a second): word times and speakers both keep to its regions.
        regions = await engine.run(lambda: speech_regions(samples), ROUTINE)
        words_job = engine.run(
            lambda: engine.transcribe_file(samples, language=chosen, beam_size=beam, on_progress=progress),
            ROUTINE,
        )
        if self.show_speaker_label:
            hints = self.speaker_hints
            pieces, segments = await asyncio.gather(
                words_job,
                engine.run(
                    lambda: OfflineDiarizer(
                        engine.speaker_encoder(), segmentation=engine.segmentation_model()
                    ).diarize(samples, hints, regions),
                    ROUTINE,
                ),
            )
        else:
            pieces, segments = await words_job, None
        batch = next(self._batch_ids)
        transcript = Transcript(provider=self.name, duration=duration, language_code=locale)
        if segments is not None:
            transcript.speaker_turns = [
                SpeakerTurn(seg.speaker, round(seg.start, 3), round(seg.end, 3)) for seg in segments
            ]
        for index, decoded in enumerate(pieces, start=1):
            words = fit_to_speech(decoded.words, regions)
            if segments is not None:
                words = label_words(words, segments)
            transcript.add(
                TranscriptResult(
                    result_id=f"local-batch-{batch}-{index}",
                    is_partial=False,
                    start=round(words[0].start, 3),
                    end=round(words[-1].end, 3),
                    text=join_words(words),
                    words=tuple(words),
                    language_code=locale,
                    language_scores=scores,
                )
            )
        return transcript

    async def _transcribe_by_streaming(self, samples: FloatArray, duration: float) -> Transcript:
        engine = await self.engine()
        session = StreamSession(engine, self.settings, self._plan, speakers=self.show_speaker_label)
        transcript = Transcript(provider=self.name, duration=duration)
        async with contextlib.aclosing(session.run(_yielding(float_to_pcm16(samples)))) as results:
            async for result in results:
                transcript.add(result)
        transcript.language_code = self._plan.locale or transcript.dominant_language()
        return transcript

    def __repr__(self) -> str:
        where = self._engine.model_path if self._engine else (self._model_path or "default")
        return f"LocalSTT(model={str(where)!r}, sample_rate={self._sample_rate}, speakers={self.show_speaker_label})"


def audio_to_samples(audio: Audio) -> FloatArray:
    """Mono float32 at 16 kHz, the only format the models take."""
    out: FloatArray = np.ascontiguousarray(audio.convert(SAMPLE_RATE, 1).samples[:, 0])
    return out


def _decoded(audio: AudioInput, sample_rate: int) -> Audio:
    if isinstance(audio, Audio):
        return audio
    if isinstance(audio, bytes):
        return Audio.from_pcm16(audio, sample_rate, 1, "<bytes>")
    return read_audio(Path(audio) if str(audio) != "-" else "-")


async def _yielding(pcm: bytes) -> AsyncIterator[bytes]:
    """A recording in 100 ms chunks, letting other tasks run between them."""
    for chunk in iter_chunks(pcm, chunk_bytes(SAMPLE_RATE, DEFAULT_CHUNK_MS)):
        yield chunk
        await asyncio.sleep(0)

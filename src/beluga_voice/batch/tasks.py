"""The worker's side of a batch job: one loaded model, many recordings, one result each.

The same :class:`Transcriber` runs in a local worker process and in a Ray actor, so both give the
same transcripts. Workers return the serialized transcript; only the driver writes files.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beluga_voice.audio.pcm import Audio
from beluga_voice.audio.reader import read_audio
from beluga_voice.batch.inputs import is_url
from beluga_voice.errors import AudioFormatError, BelugaError, ConfigurationError
from beluga_voice.stt.provider import STTProvider
from beluga_voice.stt.registry import create_provider
from beluga_voice.stt.serializers import OutputFormat, serialize

LOCAL = "local"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Native thread pools a worker bounds, so N workers never oversubscribe the cores."""


@dataclass(frozen=True)
class Task:
    index: int
    source: str
    file_id: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskResult:
    """What a worker sends back: the transcript text, or the one-line error that stopped it."""

    index: int
    source: str
    text: str | None = None
    audio_seconds: float = 0.0
    error_code: str = ""
    error: str = ""
    worker: str = ""
    peak_rss_mb: float = 0.0
    seconds: float = 0.0
    attempts: int = 1
    """Tries it took (remote providers retry streams the service refused for quota)."""

    @property
    def ok(self) -> bool:
        return self.text is not None


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to build its transcriber (plain data: it travels to processes)."""

    provider: str
    options: Mapping[str, Any]
    fmt: OutputFormat
    cpu_threads: int = 1


def bound_threads(threads: int) -> dict[str, str]:
    """The environment that keeps native libraries to ``threads`` threads."""
    return dict.fromkeys(THREAD_VARIABLES, str(max(1, threads)))


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def provider_keywords(options: Mapping[str, Any]) -> dict[str, Any]:
    """Per-input options (manifest names) as provider keyword arguments."""
    keywords = {name: value for name, value in options.items() if name != "speakers"}
    if options.get("speakers"):
        keywords["show_speaker_label"] = True
    return keywords


class Transcriber:
    """Loads the model once (local provider), then transcribes one recording per :meth:`run`."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: Any = None
        if spec.provider == LOCAL:
            from beluga_voice.providers.local.engine import LocalEngine

            # One decode at a time per worker: parallelism comes from the workers themselves.
            self._engine = LocalEngine(
                spec.options.get("model_path"), cpu_threads=spec.cpu_threads, num_workers=1
            )

    def run(self, task: Task) -> TaskResult:
        """:meth:`arun` for a worker process or actor, on the transcriber's own event loop."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self.arun(task))

    async def arun(self, task: Task) -> TaskResult:
        """Transcribe one input; every failure becomes the result's one-line error."""
        started = time.monotonic()
        try:
            audio = await asyncio.to_thread(load, task.source)
            text, seconds = await self._transcribe(audio, task)
        except BelugaError as exc:
            return self._result(task, started, error_code=exc.code, error=_one_line(exc.message))
        except Exception as exc:  # one broken input must not end the job
            return self._result(
                task, started, error_code="internal", error=_one_line(f"{type(exc).__name__}: {exc}")
            )
        return self._result(task, started, text=text, audio_seconds=seconds)

    async def _transcribe(self, audio: Audio, task: Task) -> tuple[str, float]:
        options = {**self.spec.options, **provider_keywords(task.options)}
        if self._engine is not None:
            options["engine"] = self._engine
            options.pop("model_path", None)
        provider: STTProvider = create_provider(self.spec.provider, **options)
        async with provider:
            transcript = await provider.transcribe_full(audio)
        transcript.provider = self.spec.provider
        return serialize(transcript, self.spec.fmt, file_id=task.file_id), audio.duration

    def _result(self, task: Task, started: float, **fields: Any) -> TaskResult:
        return TaskResult(
            index=task.index,
            source=task.source,
            worker=self.worker,
            peak_rss_mb=peak_rss_mb(),
            seconds=time.monotonic() - started,
            **fields,
        )

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
        if self._loop is not None:
            self._loop.close()


def load(source: str) -> Audio:
    """Decode a local path, or an fsspec URL read here, in the worker (never by the driver)."""
    if not is_url(source):
        return read_audio(Path(source))
    try:
        import fsspec
    except ImportError:
        raise ConfigurationError(
            f"{source}: reading URLs needs fsspec and the filesystem's package "
            "(e.g. pip install fsspec s3fs for s3://)"
        ) from None
    try:
        with fsspec.open(source, "rb") as file:
            data = file.read()
    except ImportError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None
    except FileNotFoundError:
        raise AudioFormatError(f"{source}: no such object; check the URL.") from None
    except (OSError, ValueError) as exc:
        raise AudioFormatError(f"{source}: cannot read it: {exc}") from None
    try:
        return read_audio(data)
    except AudioFormatError as exc:
        raise AudioFormatError(exc.message.replace("<bytes>", source)) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())

"""Shared by the reconnection, chaos and fallback tests: real speech, a `beluga serve` with the real
local engine on loopback, a stream runner that records everything, and the word accounting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from beluga_voice.audio import Audio, read_audio
from beluga_voice.providers.aws_transcribe import AWSTranscribeSTT
from beluga_voice.providers.aws_transcribe.config import TranscribeConfig
from beluga_voice.providers.local import LocalSTT
from beluga_voice.server import (
    Credential,
    CredentialStore,
    EngineFactory,
    FaultPlan,
    LocalEngineFactory,
    ServerConfig,
    StreamException,
    StreamFaults,
    TranscribeServer,
    serve_in_background,
)
from beluga_voice.stt.model import TranscriptResult, Word
from beluga_voice.stt.provider import ConnectionEvent, STTProvider
from beluga_voice.stt.wordcheck import (
    WordCheck,
    check_words,
    final_spans,
    final_words,
    order_violations,
    spoken_words,
    stable_words,
)

RATE = 16000
KEY = Credential("AKIDRECONNECTKEY0001", "reconnect/test/secret/000000000000000")
ROTATED = Credential("AKIDRECONNECTKEY0002", "reconnect/test/secret/rotated/0000000")
LIBRIVOX = "librivox/sense_and_sensibility_01_austen_64kb-{}.wav"


def speech(data_dir: Path, name: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    samples: np.ndarray[Any, np.dtype[np.float32]] = (
        read_audio(data_dir / name).convert(RATE, 1).samples[:, 0]
    )
    return samples


def stitch(parts: Iterable[np.ndarray[Any, np.dtype[np.float32]] | float]) -> bytes:
    """s16le PCM of utterances and pauses (a float is that many seconds of silence)."""
    pieces = [np.zeros(round(p * RATE), np.float32) if isinstance(p, float) else p for p in parts]
    return Audio(np.concatenate(pieces)[:, None], RATE).to_pcm16()


def two_utterances(data_dir: Path) -> bytes:
    """About 7 s: "he was not an ill disposed young man" - pause - "he might even have been made amiable himself"."""
    return stitch(
        [0.3, speech(data_dir, LIBRIVOX.format("0880")), 0.8, speech(data_dir, LIBRIVOX.format("0930")), 1.0]
    )


@dataclass(frozen=True)
class Conversation:
    """Stitched speech, and where each recording lies in it (seconds)."""

    pcm: bytes
    parts: tuple[tuple[str, float, float], ...]

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (RATE * 2)

    def spans(self, prefix: str) -> list[tuple[float, float]]:
        """Where the recordings whose name starts with ``prefix`` are."""
        return [(start, end) for name, start, end in self.parts if name.startswith(prefix)]

    @property
    def clean_voices(self) -> list[tuple[float, float]]:
        """The reader and the card player: one voice each, recorded on their own (the phone call's
        two voices the local diarizer itself separates only some of the time)."""
        return self.spans("librivox") + self.spans("cards")


def conversation(
    data_dir: Path, rounds: int = 1, seed: int = 1, call: tuple[float, float] | None = None
) -> Conversation:
    """Every real utterance of the data set (two speakers on a call, a reader, a card player),
    shuffled per round, with pauses of 0.6-2.5 s between them; ``call`` keeps only that span
    (seconds) of the phone call."""
    names = [LIBRIVOX.format(n) for n in ("0870", "0880", "0890", "0920", "0930")]
    names += [f"cards/00{n}.wav" for n in range(1, 6)] + ["pyannote/sample.wav"]
    rng = np.random.default_rng(seed)
    pieces: list[np.ndarray[Any, np.dtype[np.float32]] | float] = [0.5]
    placed: list[tuple[str, float, float]] = []
    at = 0.5
    for _ in range(rounds):
        for index in rng.permutation(len(names)):
            samples = speech(data_dir, names[index])
            if call is not None and names[index].startswith("pyannote"):
                samples = samples[round(call[0] * RATE) : round(call[1] * RATE)]
            pause = round(float(rng.uniform(0.6, 2.5)), 2)
            placed.append((names[index], at, at + len(samples) / RATE))
            at += len(samples) / RATE + pause
            pieces += [samples, pause]
    return Conversation(stitch(pieces), tuple(placed))


def short_conversation(data_dir: Path, seed: int = 1) -> Conversation:
    """About 52 s: the reader, the card player and 4 s of the phone call, shuffled, with pauses."""
    return conversation(data_dir, seed=seed, call=(6.5, 10.5))


class ContextFreeEngine:
    """`beluga serve`'s local engine deciding each utterance on its own audio.

    By default the local engine prompts Whisper with the stream's previous text. On a connection
    that begins with replayed speech, that prompt is the replayed speech, and Whisper sometimes
    repeats it inside one result ("ten of clubs. ten of clubs."): a duplicate made by the engine,
    not by the stream. The chaos tests use this engine for the reference and the faulted run alike.
    """

    def __init__(self) -> None:
        self.shared = LocalEngineFactory()

    async def preload(self) -> None:
        await self.shared.preload()

    def __call__(self, config: TranscribeConfig) -> LocalSTT:
        return LocalSTT(
            engine=self.shared.engine,
            sample_rate=config.sample_rate,
            show_speaker_label=config.show_speaker_label,
            language_code=config.language_code,
            use_context=False,
        )


@contextlib.asynccontextmanager
async def serving(engine: EngineFactory, **overrides: Any) -> AsyncIterator[TranscribeServer]:
    options: dict[str, Any] = {
        "port": 0,
        "credentials": CredentialStore([KEY, ROTATED]),
        "engine": engine,
        "max_ahead_seconds": None,
    }
    options.update(overrides)
    async with serve_in_background(ServerConfig(**options)) as server:
        yield server


def aws(server: TranscribeServer, **options: Any) -> AWSTranscribeSTT:
    options.setdefault("credentials", (KEY.access_key_id, KEY.secret_access_key))
    options.setdefault("language_code", "en-US")
    options.setdefault("max_speed", None)
    options.setdefault("drain_timeout", 30.0)  # the shared machine can be slow to finish decoding
    options.setdefault("endpoint_url", server.endpoint)  # or a proxy in front of it
    return AWSTranscribeSTT(region="us-east-1", **options)


@dataclass
class Run:
    """Everything one stream produced."""

    results: list[TranscriptResult] = field(default_factory=list)
    events: list[ConnectionEvent] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def words(self) -> list[Word]:
        """Final words; a recogniser's back-to-back loops inside one result count once."""
        return spoken_words(self.results, collapse_loops=True)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def check(self, reference: Sequence[Word]) -> WordCheck:
        words, groups = final_words(self.results, collapse_loops=True)
        return check_words(reference, words, groups=groups, heard=final_spans(self.results))


async def chunks_with_stalls(
    pcm: bytes, stalls: dict[float, float] | None = None, chunk_seconds: float = 0.1
) -> AsyncIterator[bytes]:
    """The audio in 100 ms pieces; at media time t the source goes quiet for ``stalls[t]`` wall seconds."""
    size = round(RATE * 2 * chunk_seconds)
    stall_at = {round(at * RATE * 2 / size) * size: pause for at, pause in (stalls or {}).items()}
    for start in range(0, len(pcm), size):
        if start in stall_at:
            await asyncio.sleep(stall_at[start])
        yield pcm[start : start + size]


async def run_stream(
    stt: STTProvider, pcm: bytes, *, stalls: dict[float, float] | None = None, into: Run | None = None
) -> Run:
    run = into or Run()
    started = time.monotonic()
    source = chunks_with_stalls(pcm, stalls) if stalls else [pcm]
    async for result in stt.stream(source, on_connection_event=run.events.append):
        run.results.append(result)
    run.seconds = time.monotonic() - started
    return run


async def stable_reference(engine: EngineFactory, pcm: bytes, runs: int = 2, **options: Any) -> list[Word]:
    """The words every fault-free run of ``pcm`` yields (a recogniser is not perfectly repeatable)."""
    out = []
    async with serving(engine) as server:
        for _ in range(runs):
            out.append((await run_stream(aws(server, **options), pcm)).words)
    return stable_words(out)


def reference_words(engine: EngineFactory, pcm: bytes, runs: int = 2, **options: Any) -> list[Word]:
    """:func:`stable_reference` for synchronous fixtures."""
    return asyncio.run(stable_reference(engine, pcm, runs, **options))


def assert_each_word_once(run: Run, reference: Sequence[Word]) -> None:
    check = run.check(reference)
    assert check.ok, check.summary()
    assert len(reference) >= 5, "the reference should hold real words"
    assert not order_violations(run.results), order_violations(run.results)


# --- chaos: every kind of fault, then seeded random ones -------------------------------------------


def exception(name: str, after: float) -> StreamFaults:
    return StreamFaults(exception_after=after, exception=StreamException.named(name))


OPENING = (
    StreamFaults(drop_after=1.0),
    StreamFaults(refuse_status=503),
    exception("InternalFailureException", 1.0),
    StreamFaults(refuse_status=429),
    StreamFaults(stall_after=1.0),  # a black hole: the unanswered ping replaces the connection
    exception("ServiceUnavailableException", 1.2),
    StreamFaults(refuse_status=500),
    exception("LimitExceededException", 0.8),
)


@dataclass(frozen=True)
class ScheduledFaults(FaultPlan):
    """An opening that meets every kind of fault once, then seeded random faults (``streams`` of them)."""

    opening: tuple[StreamFaults, ...] = OPENING

    def for_stream(self, number: int) -> StreamFaults:
        if number < len(self.opening):
            return self.opening[number]
        return super().for_stream(number - len(self.opening))


class ExpiringClock:
    """The server's clock, ten minutes ahead at the given handshakes (counted from 0): expired URLs."""

    def __init__(self, *handshakes: int) -> None:
        self.handshakes = set(handshakes)
        self.count = 0

    def __call__(self) -> datetime:
        now = datetime.now(UTC)
        self.count += 1
        return now + timedelta(minutes=10) if self.count - 1 in self.handshakes else now


def faults_survived(run: Run) -> Counter[str]:
    """Faults met, by kind: a connection that failed (its error's name), or a connection attempt that
    failed ("refused " + name: a reconnecting event that follows another one reports it)."""
    kinds: Counter[str] = Counter()
    previous = ""
    for event in run.events:
        if event.error is not None:
            name = getattr(event.error, "exception_name", None) or type(event.error).__name__
            if event.kind == "disconnected" and "gave up" not in event.detail:
                kinds[name] += 1
            elif event.kind == "reconnecting" and previous == "reconnecting":
                kinds[f"refused {name}"] += 1
        previous = event.kind
    return kinds


def music_like_noise(seconds: float, seed: int = 0) -> bytes:
    """s16le PCM that is loud (about -20 dBFS, far above -45) but no speech: band-limited noise under
    chords that change every half second, with a beat. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < 300) | (freqs > 4000)] = 0  # band-limited hiss
    hiss = np.fft.irfft(spectrum, n)
    hiss /= np.abs(hiss).max()
    t = np.arange(n) / RATE
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    chords = rng.integers(0, len(scale), size=(int(seconds * 2) + 1, 3))
    step = np.minimum((t * 2).astype(int), len(chords) - 1)
    tones = sum(np.sin(2 * np.pi * scale[chords[step, k]] * t) for k in range(3)) / 3
    beat = 0.6 + 0.4 * (np.sin(2 * np.pi * 2 * t) > 0)
    mix = (0.25 * hiss + 0.35 * tones * beat).astype(np.float32)
    return Audio(mix[:, None], RATE).to_pcm16()


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 that cuts every connection through it (both sides reset, no close
    frame) after a seeded random 3-8 s: what a flaky network does to a long stream."""

    def __init__(self, upstream_port: int, every: tuple[float, float] = (3.0, 8.0), seed: int = 0) -> None:
        self.upstream_port = upstream_port
        self.every = every
        self.rng = np.random.default_rng(seed)
        self.cuts = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def endpoint(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        cut_after = float(self.rng.uniform(*self.every))
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()

        pipes = [
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ]
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            done, _ = await asyncio.wait(pipes, timeout=cut_after, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                self.cuts += 1
        finally:
            for p in pipes:
                p.cancel()
            writer.transport.abort()
            up_writer.transport.abort()
            self._tasks.discard(task)


def inserted_words(check: WordCheck, fault_free: Sequence[Sequence[Word]]) -> list[Word]:
    """Inserted words (``WordCheck.inserted``) where no fault-free run of the same audio has any word
    (midpoints within 0.5 s): words made up in a pause ("5 5."), not the recogniser choosing other
    words for speech that every run hears."""

    def middle(word: Word) -> float:
        return (word.start + word.end) / 2

    heard = sorted(middle(w) for run in fault_free for w in run)
    return [w for w in check.inserted if not any(abs(h - middle(w)) <= 0.5 for h in heard)]

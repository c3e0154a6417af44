"""One live stream through the local engine: VAD endpointing, partials, finals, speaker labels.

Whisper decodes whole utterances, not a growing stream, so streaming means re-decoding the open
utterance now and then (partials) and once more when it ends (final). The end of an utterance is
the moment a voice agent waits for, so the session works ahead: as soon as the speaker has been
quiet for ``tail`` seconds it decodes the utterance as it stands (a *candidate*); if the silence
lasts until the utterance is declared over, that decode is the final, already done. An utterance
ends after ``end_silence`` of silence, or after the shorter ``sentence_end_silence`` when the
candidate ends with a full stop or question mark, or when it reaches ``max_segment`` seconds.

A stream runs one decode at a time (the engine's pool interleaves many streams), and all state
changes happen on the event loop, so no locks are needed here.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field, replace

from beluga_voice.aio import as_async_iter
from beluga_voice.audio.pcm import PCM_SAMPLE_WIDTH, Audio, FloatArray, StreamResampler
from beluga_voice.errors import ConfigurationError
from beluga_voice.providers.local.buffer import SampleBuffer
from beluga_voice.providers.local.diarization.clustering import DEFAULT_THRESHOLD, SpeakerClustering
from beluga_voice.providers.local.diarization.turns import Turn, embed_turns
from beluga_voice.providers.local.engine import SAMPLE_RATE, Decoded, LocalEngine
from beluga_voice.providers.local.executor import ROUTINE, URGENT
from beluga_voice.providers.local.languages import LanguagePlan
from beluga_voice.providers.local.segmenter import ClosedUtterance, UtteranceTracker
from beluga_voice.providers.local.stabilizer import Stabilizer
from beluga_voice.providers.local.vad import StreamingVAD
from beluga_voice.providers.local.words import ends_sentence
from beluga_voice.stt.model import TranscriptResult, Word, join_words
from beluga_voice.stt.provider import AudioStream

_CONTEXT_CHARS = 200
_SPLIT_LOOKBACK = 3.0  # seconds searched for the quietest point when an utterance is too long
_FIRST_PARTIAL = 0.35  # seconds of speech before the first partial (if partial_interval is longer)


@dataclass(frozen=True)
class StreamSettings:
    """Tuning of the streaming behaviour; the defaults suit a voice agent on a 2-core machine."""

    partial_interval: float = 0.6  # seconds of new speech between partial results
    end_silence: float = 0.6  # silence that ends an utterance
    sentence_end_silence: float = 0.3  # silence that ends one whose text ends a sentence
    max_segment: float = 15.0  # an utterance is cut (at its quietest point) beyond this length
    tail: float = 0.1  # audio kept after the last speech; also when the candidate decode starts
    pre_roll: float = 0.25  # audio kept before detected speech (VAD reacts a little late)
    min_speech: float = 0.15  # shorter bursts are noise, not utterances
    vad_threshold: float = 0.5  # Silero speech probability that starts speech
    use_context: bool = False  # prompt Whisper with the stream's previous text (measured: worse WER)
    beam_size: int | None = None  # None: the engine's
    speaker_threshold: float = DEFAULT_THRESHOLD
    max_speakers: int | None = None

    def __post_init__(self) -> None:
        positive = {
            "partial_interval": self.partial_interval,
            "end_silence": self.end_silence,
            "sentence_end_silence": self.sentence_end_silence,
            "max_segment": self.max_segment,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigurationError(f"{name} must be positive, got {value}")
        if not 1.0 <= self.max_segment <= 29.0:
            raise ConfigurationError(
                f"max_segment must be 1-29 s (Whisper sees 30 s), got {self.max_segment}"
            )
        if self.sentence_end_silence > self.end_silence:
            raise ConfigurationError("sentence_end_silence cannot be longer than end_silence")
        if not 0.0 < self.vad_threshold < 1.0:
            raise ConfigurationError(f"vad_threshold must be between 0 and 1, got {self.vad_threshold}")
        if self.tail < 0 or self.pre_roll < 0 or self.min_speech < 0:
            raise ConfigurationError("tail, pre_roll and min_speech cannot be negative")
        if self.beam_size is not None and self.beam_size < 1:
            raise ConfigurationError(f"beam_size must be at least 1, got {self.beam_size}")
        if self.max_speakers is not None and self.max_speakers < 1:
            raise ConfigurationError(f"max_speakers must be at least 1, got {self.max_speakers}")


def _samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


@dataclass
class _Utterance:
    result_id: str
    stabilizer: Stabilizer = field(default_factory=Stabilizer)
    closed: ClosedUtterance | None = None
    latest: _Outcome | None = None
    shown_text: str | None = None  # text of the last partial sent
    sentence: Decoded | None = None  # set when cut after a stable sentence: its final words

    def final_ready(self) -> _Outcome | None:
        """The latest decode if it covers the closed utterance exactly as a final would."""
        done, closed = self.latest, self.closed
        if done is None or closed is None:
            return None
        job = done.job
        if self.sentence is not None:
            return done if job.known is not None else None
        if job.start == closed.start and job.speech_end == closed.speech_end and job.end >= closed.end:
            return done
        return None


@dataclass(frozen=True)
class _Job:
    utterance: _Utterance
    start: int
    end: int
    speech_end: int
    urgent: bool
    known: Decoded | None = None  # the words are known already: only speaker prints are needed


@dataclass(frozen=True)
class _Outcome:
    job: _Job
    decoded: Decoded
    turns: tuple[Turn, ...]


class _Finished:
    """Marks the end of the result queue."""


class StreamSession:
    """Turns one audio stream into results; used by :class:`LocalSTT.stream`."""

    _ids = itertools.count(1)

    def __init__(
        self,
        engine: LocalEngine,
        settings: StreamSettings,
        plan: LanguagePlan,
        *,
        input_rate: int = SAMPLE_RATE,
        speakers: bool = False,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._plan = plan.for_stream()  # identify_language decides the stream's language early
        self._input_rate = input_rate
        self._resampler = StreamResampler(input_rate, SAMPLE_RATE) if input_rate != SAMPLE_RATE else None
        self._speakers = (
            SpeakerClustering(settings.speaker_threshold, max_speakers=settings.max_speakers)
            if speakers
            else None
        )
        self._session_id = next(self._ids)
        self._utterance_ids = itertools.count(1)
        self._vad = StreamingVAD()
        self._tracker = UtteranceTracker(settings.vad_threshold, _samples(settings.pre_roll))
        self._buffer = SampleBuffer()
        self._current: _Utterance | None = None
        self._closing: deque[_Utterance] = deque()
        # One urgent job (final, end-of-utterance candidate) and one routine job (partial) at a time:
        # an utterance that ends while a partial decodes does not wait for it (engine num_workers=2).
        self._urgent: asyncio.Task[None] | None = None
        self._routine: asyncio.Task[None] | None = None
        self._last_partial_at = 0
        self._context = ""
        self._timeline_end = 0.0  # end of the last final word: later words never start before it
        self._input_done = False
        self._odd_byte = b""
        self._results: asyncio.Queue[TranscriptResult | BaseException | _Finished] = asyncio.Queue()
        self._drained = asyncio.Event()

    async def run(self, audio: AudioStream) -> AsyncGenerator[TranscriptResult, None]:
        pump = asyncio.create_task(self._pump(audio))
        try:
            while True:
                item = await self._results.get()
                if isinstance(item, _Finished):
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            tasks = [t for t in (pump, self._urgent, self._routine) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- input ---------------------------------------------------------------------------------

    async def _pump(self, audio: AudioStream) -> None:
        try:
            async for piece in as_async_iter(audio):
                if piece:
                    self._feed(piece)
                    self._advance()
            if self._resampler is not None:
                self._take(self._resampler.flush()[:, 0])
            self._input_done = True
            self._advance()
            await self._drained.wait()
            await self._results.put(_Finished())
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # delivered to the consumer, which re-raises it
            await self._results.put(exc)

    def _feed(self, piece: bytes) -> None:
        data = self._odd_byte + bytes(piece)
        whole = len(data) - len(data) % PCM_SAMPLE_WIDTH
        self._odd_byte = data[whole:]
        if not whole:
            return
        audio = Audio.from_pcm16(data[:whole], self._input_rate, 1, "<stream>")
        if self._resampler is None:
            self._take(audio.samples[:, 0])
        else:
            self._take(self._resampler.process(audio.samples)[:, 0])

    def _take(self, samples: FloatArray) -> None:
        if not len(samples):
            return
        self._buffer.append(samples)
        self._tracker.push(self._vad.feed(samples))
        if self._tracker.open is None and not self._closing and self._urgent is None:
            self._buffer.discard_before(self._keep_from())  # long silences are not kept

    # -- decisions -----------------------------------------------------------------------------

    def _advance(self) -> None:
        self._check_end_of_utterance()
        if self._urgent is None:
            self._start_urgent_job()
        if self._routine is None and self._urgent is None and not self._closing:
            self._start_partial_job()
        idle = self._urgent is None and self._routine is None
        if self._input_done and idle and not self._closing and self._tracker.open is None:
            self._drained.set()

    def _check_end_of_utterance(self) -> None:
        tracker, s = self._tracker, self._settings
        speech = tracker.open
        if speech is None:
            return
        if self._current is None:
            self._current = _Utterance(f"local-{self._session_id}-{next(self._utterance_ids)}")
            # the first partial comes sooner than the next ones: the listener waits for a first sign
            self._last_partial_at = tracker.position - _samples(max(s.partial_interval - _FIRST_PARTIAL, 0.0))
        silence = tracker.silence
        latest = self._current.latest
        sentence_done = (
            latest is not None
            and latest.job.speech_end == speech.speech_end
            and latest.job.end >= speech.speech_end + _samples(s.tail)
            and ends_sentence(latest.decoded.words)
        )
        if (
            self._input_done
            or silence >= _samples(s.end_silence)
            or (sentence_done and silence >= _samples(s.sentence_end_silence))
        ):
            self._close(tracker.close(speech.speech_end + _samples(s.tail)))
        elif tracker.position - speech.start >= _samples(s.max_segment):
            self._close(tracker.split(tracker.position - _samples(_SPLIT_LOOKBACK), tracker.position))
            self._check_end_of_utterance()  # the rest of the speech opens the next utterance

    def _close(self, closed: ClosedUtterance) -> None:
        utterance, self._current = self._current, None
        assert utterance is not None
        utterance.closed = closed
        if closed.speech_samples >= _samples(self._settings.min_speech) or utterance.shown_text is not None:
            self._closing.append(utterance)

    def _start_urgent_job(self) -> None:
        """The next final (in order), or a candidate decode once the speaker has paused."""
        s, tracker = self._settings, self._tracker
        while self._closing:
            head = self._closing[0]
            ready = head.final_ready()
            if ready is None:
                closed = head.closed
                assert closed is not None
                job = _Job(head, closed.start, closed.end, closed.speech_end, True, head.sentence)
                if head.sentence is not None and self._speakers is None:
                    ready = _Outcome(job, head.sentence, ())
                else:
                    self._launch(job)
                    return
            self._closing.popleft()
            self._emit_final(head, ready)
        speech, current = tracker.open, self._current
        if speech is None or current is None:
            return
        candidate_end = speech.speech_end + _samples(s.tail)
        if tracker.position >= candidate_end:
            latest = current.latest
            if latest is None or latest.job.speech_end != speech.speech_end or latest.job.end < candidate_end:
                self._launch(_Job(current, speech.start, candidate_end, speech.speech_end, urgent=True))

    def _start_partial_job(self) -> None:
        s, tracker = self._settings, self._tracker
        speech, current = tracker.open, self._current
        if speech is None or current is None:
            return
        if (
            tracker.in_speech
            and speech.speech_samples >= _samples(s.min_speech)
            and tracker.position - self._last_partial_at >= _samples(s.partial_interval)
        ):
            self._last_partial_at = tracker.position
            self._launch(_Job(current, speech.start, tracker.position, speech.speech_end, urgent=False))

    # -- decoding ------------------------------------------------------------------------------

    def _launch(self, job: _Job) -> None:
        samples = self._buffer.slice(job.start, job.end)
        prompt = self._context if self._settings.use_context else None
        with_turns = job.urgent and self._speakers is not None
        engine, plan, beam_size = self._engine, self._plan, self._settings.beam_size

        def work() -> _Outcome:
            decoded = job.known or engine.decode(
                samples,
                offset=job.start / SAMPLE_RATE,
                language=plan.fixed,
                candidates=tuple(plan.candidates),
                prompt=prompt,
                beam_size=beam_size,
            )
            turns = (
                embed_turns(engine.speaker_encoder(), samples, job.start / SAMPLE_RATE, decoded.words)
                if with_turns and decoded.words
                else []
            )
            return _Outcome(job, decoded, tuple(turns))

        async def run() -> None:
            try:
                outcome = await engine.run(work, URGENT if job.urgent else ROUTINE)
                if job.urgent:
                    self._urgent = None
                else:
                    self._routine = None
                self._on_decoded(outcome)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # delivered to the consumer, which re-raises it
                self._results.put_nowait(exc)

        task = asyncio.create_task(run())
        if job.urgent:
            self._urgent = task
        else:
            self._routine = task

    def _on_decoded(self, outcome: _Outcome) -> None:
        utterance = outcome.job.utterance
        latest = utterance.latest
        newest = outcome.job.known is not None or latest is None or outcome.job.end >= latest.job.end
        if newest:
            utterance.latest = outcome
        if newest and utterance.closed is None and utterance is self._current:
            self._emit_partial(utterance, outcome)
        self._advance()

    # -- results -------------------------------------------------------------------------------

    def _emit_partial(self, utterance: _Utterance, outcome: _Outcome) -> None:
        if not outcome.decoded.words:
            return
        words = _not_before(utterance.stabilizer.partial(outcome.decoded.words), self._timeline_end)
        text = join_words(words)
        if text != utterance.shown_text:
            utterance.shown_text = text
            self._results.put_nowait(self._result(utterance, words, outcome.decoded, partial=True))
        self._finish_sentence(utterance, outcome.decoded)

    def _finish_sentence(self, utterance: _Utterance, decoded: Decoded) -> None:
        """In continuous speech (no pause long enough to end the utterance), a sentence whose words
        and full stop are stable, with speech after it, is final: cut it off at the quietest point
        before the next word, so the speaker's earlier sentences do not wait for a pause."""
        committed = utterance.stabilizer.committed
        ends = [i for i, w in enumerate(committed) if w.is_punctuation and ends_sentence(committed[: i + 1])]
        if not ends or self._tracker.open is None:
            return
        after = _spoken_after(decoded.words, committed[ends[-1] - 1])
        following = [w for w in committed[ends[-1] + 1 :] if not w.is_punctuation] or after
        if not following:
            return
        sentence = tuple(committed[: ends[-1] + 1])
        last_word = max((w for w in sentence if not w.is_punctuation), key=lambda w: w.end)
        lo = _samples(last_word.end) - _samples(0.05)
        hi = max(_samples(following[0].start) + _samples(0.05), lo + 1)
        if lo <= self._tracker.open.start:
            return
        utterance.sentence = Decoded(sentence, decoded.language, decoded.language_scores)
        self._close(self._tracker.split(lo, hi))

    def _emit_final(self, utterance: _Utterance, outcome: _Outcome) -> None:
        words = [replace(w, stable=True) for w in outcome.decoded.words]  # the best decode, now fixed
        if self._speakers is not None:
            words = self._speakers.label_words(words, outcome.turns)
        closed = utterance.closed
        assert closed is not None
        self._buffer.discard_before(self._keep_from())
        if not words and utterance.shown_text is None:
            return
        if words:
            words = _not_before(words, self._timeline_end)
            self._timeline_end = words[-1].end
            self._context = (self._context + " " + join_words(words)).strip()[-_CONTEXT_CHARS:]
        self._results.put_nowait(
            self._result(utterance, words, outcome.decoded, partial=False, closed=closed)
        )

    def _keep_from(self) -> int:
        starts = [u.closed.start for u in self._closing if u.closed is not None]
        if self._tracker.open is not None:
            starts.append(self._tracker.open.start)
        return min(starts, default=self._tracker.position - _samples(self._settings.pre_roll) - 1024)

    def _result(
        self,
        utterance: _Utterance,
        words: list[Word],
        decoded: Decoded,
        *,
        partial: bool,
        closed: ClosedUtterance | None = None,
    ) -> TranscriptResult:
        if words:
            start, end = words[0].start, words[-1].end
        else:
            assert closed is not None
            start, end = closed.start / SAMPLE_RATE, closed.end / SAMPLE_RATE
        locale, scores = self._plan.label(
            decoded.language, decoded.language_scores, final=not partial, speech=end - start if words else 0.0
        )
        return TranscriptResult(
            result_id=utterance.result_id,
            is_partial=partial,
            start=round(start, 3),
            end=round(end, 3),
            text=join_words(words),
            words=tuple(words),
            language_code=locale,
            language_scores=scores,
        )


def _not_before(words: list[Word], floor: float) -> list[Word]:
    """Words moved forward where they would start before ``floor`` (Whisper's word times are
    approximate, and an utterance cut mid-stream must not overlap the one before)."""
    out = []
    for word in words:
        if word.start < floor:
            word = replace(word, start=floor, end=max(word.end, floor))
        out.append(word)
        floor = word.end if not word.is_punctuation else floor
    return out


def _spoken_after(words: Sequence[Word], anchor: Word) -> list[Word]:
    """Spoken words of a decode that start after ``anchor`` ended."""
    return [w for w in words if not w.is_punctuation and w.start >= anchor.end - 0.05]

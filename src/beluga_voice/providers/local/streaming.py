"""One live stream through the local engine: VAD endpointing, partials, finals, speaker labels.

Whisper decodes whole utterances, not a growing stream, so streaming means re-decoding the open
utterance now and then (partials) and once more when it ends (final). The end of an utterance is
the moment a voice agent waits for, so the session works ahead: as soon as the speaker has been
quiet for ``tail`` seconds it decodes the utterance as it stands (a *candidate*); if the silence
lasts until the utterance is declared over, that decode is the final, already done. An utterance
ends after ``end_silence`` of silence, or after the shorter ``sentence_end_silence`` when the
candidate ends with a full stop or question mark, or when it reaches ``max_segment`` seconds.

Every decision is a function of the audio alone, never of the client's framing or pace or of how
fast the machine decodes: the input is judged one 32 ms VAD window at a time, decodes start at
fixed positions of the stream, and a decode's result may change a decision only at a fixed
position after its start (its *due* position). If it is not done by then, the stream stops taking
input until it is (the client's socket backs up), instead of deciding without it. At real-time
pace decodes finish well before they are due, so nothing waits; a client sending faster than the
engine decodes is slowed to its pace. Results are sent as soon as they are ready, finals in order.

All state changes happen on the event loop, so no locks are needed here.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

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
from beluga_voice.providers.local.vad import WINDOW, StreamingVAD
from beluga_voice.providers.local.words import ends_sentence
from beluga_voice.stt.model import TranscriptResult, Word, join_words
from beluga_voice.stt.provider import AudioStream

_CONTEXT_CHARS = 200
_SPLIT_LOOKBACK = 3.0  # seconds searched for the quietest point when an utterance is too long
_FIRST_PARTIAL = 0.35  # seconds of speech before the first partial (if partial_interval is longer)
_PARTIAL_DUE = 0.5  # seconds of audio a partial decode has before the stream waits for it
_FINAL_DUE = 1.0  # seconds of audio a final may lag behind the input before the stream waits


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


@dataclass(frozen=True)
class _Job:
    utterance: _Utterance
    start: int
    end: int
    speech_end: int
    urgent: bool
    known: Decoded | None = None  # the words are known already: only speaker prints are needed

    @property
    def span(self) -> tuple[int, int, int]:
        return self.start, self.end, self.speech_end


@dataclass(frozen=True)
class _Outcome:
    job: _Job
    decoded: Decoded
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class _Cut:
    """A sentence that a decode found complete and confirmed, to be cut off the open utterance."""

    sentence: Decoded
    lo: int  # the cut goes at the quietest window between these sample positions
    hi: int


@dataclass(eq=False)
class _Decode:
    """A partial or end-of-utterance decode of the open utterance. Its result is *processed* as soon
    as it and every decode launched before it are done (stable words, the partial shown, a proposed
    sentence cut), and *applied* when the stream reaches sample ``due``: only then may it change
    what the stream decides, so the decision never depends on how fast the decode ran. A partial
    is applied once processed (its cut depends on the stable words of every earlier decode); a
    candidate as soon as it is done (only its own words count: does it end a sentence?)."""

    job: _Job
    task: asyncio.Task[_Outcome]
    due: int
    processed: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: _Outcome | None = None
    cut: _Cut | None = None


@dataclass(eq=False)
class _Final:
    """The final of a closed utterance: sent as soon as its decode is done, in utterance order."""

    utterance: _Utterance
    closed: ClosedUtterance
    due: int  # the stream waits here for it, so a fast client cannot pile up finals
    task: asyncio.Task[_Outcome] | None = None
    outcome: _Outcome | None = None
    context: str = ""  # the stream's text after this final (the prompt of later decodes)
    sent: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class _Utterance:
    result_id: str
    stabilizer: Stabilizer = field(default_factory=Stabilizer)
    closed: ClosedUtterance | None = None
    decodes: list[_Decode] = field(default_factory=list)  # launched for this utterance
    candidate_for: int = -1  # speech end of the last end-of-utterance decode launched
    processed_end: int = 0  # end of the newest decode processed
    latest: _Outcome | None = None  # the newest decode applied
    shown_text: str | None = None  # text of the last partial sent
    held: TranscriptResult | None = None  # a partial waiting for an earlier utterance's final
    sentence: Decoded | None = None  # set when cut after a stable sentence: its final words


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
        self._unjudged = np.zeros(0, np.float32)  # samples not yet a whole VAD window
        self._current: _Utterance | None = None
        self._decodes: deque[_Decode] = deque()  # launched, not yet processed (launch order)
        self._finals: deque[_Final] = deque()  # closed, not yet sent (utterance order)
        self._dues: list[tuple[int, int, _Decode | _Final]] = []  # heap by (due, launch order)
        self._order = itertools.count()
        self._tasks: set[asyncio.Task[_Outcome]] = set()
        self._last_final: _Final | None = None
        self._last_partial_at = 0
        self._context = ""  # the text of the finals sent so far (a prompt, with use_context)
        self._timeline_end = 0.0  # end of the last final word: later words never start before it
        self._input_done = False
        self._failure: BaseException | None = None
        self._odd_byte = b""
        self._results: asyncio.Queue[TranscriptResult | BaseException | _Finished] = asyncio.Queue()

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
            tasks: list[asyncio.Task[Any]] = [pump, *self._tasks]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- input ---------------------------------------------------------------------------------

    async def _pump(self, audio: AudioStream) -> None:
        try:
            async for piece in as_async_iter(audio):
                if piece:
                    await self._ingest(self._pcm_to_samples(piece))
            if self._resampler is not None:
                await self._ingest(self._resampler.flush()[:, 0])
            await self._finish()
            await self._results.put(_Finished())
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # delivered to the consumer, which re-raises it
            if exc is not self._failure:
                await self._results.put(exc)

    def _pcm_to_samples(self, piece: bytes) -> FloatArray:
        data = self._odd_byte + bytes(piece)
        whole = len(data) - len(data) % PCM_SAMPLE_WIDTH
        self._odd_byte = data[whole:]
        if not whole:
            return np.zeros(0, np.float32)
        audio = Audio.from_pcm16(data[:whole], self._input_rate, 1, "<stream>")
        if self._resampler is None:
            return audio.samples[:, 0]
        return self._resampler.process(audio.samples)[:, 0]

    async def _ingest(self, samples: FloatArray) -> None:
        """Judge the audio one VAD window at a time, whatever the size of the pieces it came in:
        every decision below happens at a window boundary, so framing cannot move it."""
        if not samples.size:
            return
        self._buffer.append(samples)
        pending = np.concatenate((self._unjudged, samples)) if self._unjudged.size else samples
        whole = pending.size - pending.size % WINDOW
        for start in range(0, whole, WINDOW):
            self._tracker.push(self._vad.feed(pending[start : start + WINDOW]))
            await self._step()
        self._unjudged = pending[whole:].copy()

    async def _step(self) -> None:
        """Everything the stream decides at the current window boundary, in a fixed order."""
        await self._apply_due()
        self._check_end_of_utterance()
        self._start_decodes()
        self._buffer.discard_before(self._keep_from())  # long silences are not kept

    async def _finish(self) -> None:
        self._input_done = True
        self._check_end_of_utterance()
        waits = [d.processed for d in self._decodes] + [f.sent for f in self._finals]
        for event in waits:
            await event.wait()
            self._raise_failure()

    # -- decisions, on the media timeline -------------------------------------------------------

    async def _apply_due(self) -> None:
        """Apply every decode and final due by now, waiting for those not done yet. Waiting holds
        the input (the client's socket backs up) rather than deciding without the result."""
        position = self._tracker.position
        while self._dues and self._dues[0][0] <= position:
            _, _, item = heapq.heappop(self._dues)
            if isinstance(item, _Final):
                await item.sent.wait()
                self._raise_failure()
                continue
            candidate = item.job.urgent
            if candidate:
                # its words alone decide (a sentence end): no need to wait for earlier partials
                if not item.task.done():
                    await asyncio.wait([item.task])
            else:  # its sentence cut comes from the stable words, so every earlier decode counts
                await item.processed.wait()
            outcome = self._outcome_of(item.task) if candidate else item.outcome
            self._raise_failure()
            assert outcome is not None
            self._apply(item, outcome)

    def _apply(self, decode: _Decode, outcome: _Outcome) -> None:
        utterance = decode.job.utterance
        if utterance.latest is None or outcome.job.end >= utterance.latest.job.end:
            utterance.latest = outcome
        cut, speech = decode.cut, self._tracker.open
        if cut is None or utterance is not self._current or speech is None or cut.lo <= speech.start:
            return
        utterance.sentence = cut.sentence
        self._close(self._tracker.split(cut.lo, cut.hi))

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
        if (
            closed.speech_samples < _samples(self._settings.min_speech)
            and not utterance.decodes
            and utterance.sentence is None
        ):
            return  # a burst of noise, never decoded nor shown
        final = _Final(utterance, closed, self._tracker.position + _samples(_FINAL_DUE))
        job = _Job(utterance, closed.start, closed.end, closed.speech_end, True, utterance.sentence)
        if utterance.sentence is not None and self._speakers is None:
            final.outcome = _Outcome(job, utterance.sentence, ())
        elif utterance.sentence is not None:  # the words are known: only the speaker prints remain
            final.task = self._launch(job, final=True)
        else:
            ready = next(
                (d for d in reversed(utterance.decodes) if d.job.urgent and d.job.span == job.span),
                None,
            )  # the end-of-utterance decode of exactly this audio is the final's decode
            if ready is None:
                final.task = self._launch(job, final=True)
            elif self._speakers is None:
                final.task = ready.task
            else:  # its words, with the speaker prints taken once, for the final only
                final.task = self._launch(job, final=True, words_from=ready.task)
        self._finals.append(final)
        heapq.heappush(self._dues, (final.due, next(self._order), final))
        self._last_final = final
        self._drain()

    def _start_decodes(self) -> None:
        """An end-of-utterance candidate once the speaker has paused for ``tail``, and a partial
        every ``partial_interval`` of speech, both at fixed positions of the stream."""
        s, tracker = self._settings, self._tracker
        speech, current = tracker.open, self._current
        if speech is None or current is None or speech.speech_samples < _samples(s.min_speech):
            return
        position = tracker.position
        candidate_end = speech.speech_end + _samples(s.tail)
        if position >= candidate_end and current.candidate_for != speech.speech_end:
            current.candidate_for = speech.speech_end
            job = _Job(current, speech.start, candidate_end, speech.speech_end, urgent=True)
            due = max(speech.speech_end + _samples(s.sentence_end_silence), position + 1)
            self._start_decode(job, due)
        if tracker.in_speech and position - self._last_partial_at >= _samples(s.partial_interval):
            self._last_partial_at = position
            job = _Job(current, speech.start, position, speech.speech_end, urgent=False)
            self._start_decode(job, position + _samples(_PARTIAL_DUE))

    def _start_decode(self, job: _Job, due: int) -> None:
        decode = _Decode(job, self._launch(job), due)
        job.utterance.decodes.append(decode)
        self._decodes.append(decode)
        heapq.heappush(self._dues, (due, next(self._order), decode))

    def _keep_from(self) -> int:
        if self._tracker.open is not None:
            return self._tracker.open.start
        return self._tracker.position - _samples(self._settings.pre_roll) - WINDOW

    # -- decoding ------------------------------------------------------------------------------

    def _launch(
        self, job: _Job, *, final: bool = False, words_from: asyncio.Task[_Outcome] | None = None
    ) -> asyncio.Task[_Outcome]:
        """Decode ``job`` on the engine's pool (or take its words from ``words_from``); a final also
        gets the speaker prints of its words (only finals are labelled, so only they pay for it)."""
        samples = self._buffer.slice(job.start, job.end)
        with_turns = final and self._speakers is not None
        engine, plan, beam_size = self._engine, self._plan, self._settings.beam_size
        after = self._last_final if self._settings.use_context else None

        def work(prompt: str | None, known: Decoded | None) -> _Outcome:
            decoded = known or engine.decode(
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

        async def run() -> _Outcome:
            known = job.known if words_from is None else (await words_from).decoded
            if with_turns and known is not None and not known.words:
                return _Outcome(job, known, ())
            prompt = None
            if after is not None and known is None:  # the text of every utterance closed before
                await after.sent.wait()
                prompt = after.context or None
            return await engine.run(lambda: work(prompt, known), URGENT if job.urgent else ROUTINE)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[_Outcome]) -> None:
        self._tasks.discard(task)
        self._drain()

    def _drain(self) -> None:
        """Process finished decodes in launch order and send finished finals in utterance order."""
        while self._decodes and self._decodes[0].task.done():
            decode = self._decodes[0]
            outcome = self._outcome_of(decode.task)
            if outcome is None:
                return
            self._decodes.popleft()
            decode.outcome = outcome
            self._process(decode)
            decode.processed.set()
        while self._finals:
            final = self._finals[0]
            if final.outcome is None:
                if final.task is None or not final.task.done():
                    break
                final.outcome = self._outcome_of(final.task)
                if final.outcome is None:
                    return
            self._finals.popleft()
            self._emit_final(final)
            final.sent.set()
            if not self._finals:
                self._release_held_partial()

    def _outcome_of(self, task: asyncio.Task[_Outcome]) -> _Outcome | None:
        if task.cancelled():
            self._fail(asyncio.CancelledError("a decode was cancelled"))
            return None
        exc = task.exception()
        if exc is not None:
            self._fail(exc)
            return None
        return task.result()

    def _fail(self, exc: BaseException) -> None:
        """Hand the error to the consumer once and wake the pump, which then stops."""
        if self._failure is not None:
            return
        self._failure = exc
        self._results.put_nowait(exc)
        for decode in self._decodes:
            decode.processed.set()
        for final in self._finals:
            final.sent.set()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    # -- results -------------------------------------------------------------------------------

    def _process(self, decode: _Decode) -> None:
        """Stable words and the sentence cut this decode proposes, then the partial it shows."""
        utterance, outcome = decode.job.utterance, decode.outcome
        assert outcome is not None
        if outcome.job.end < utterance.processed_end or not outcome.decoded.words:
            return
        utterance.processed_end = outcome.job.end
        words = utterance.stabilizer.partial(outcome.decoded.words)
        if not decode.job.urgent:  # partials propose sentence cuts; a candidate's pause decides itself
            decode.cut = self._sentence_cut(utterance, outcome.decoded)
        if utterance.closed is not None or utterance is not self._current:
            return  # only shown while the utterance is open (display only: decides nothing)
        words = _not_before(words, self._timeline_end)
        text = join_words(words)
        shown = utterance.held.text if utterance.held is not None else utterance.shown_text
        if text == shown:
            return
        partial = self._result(utterance, words, outcome.decoded, partial=True)
        if self._finals:  # an earlier utterance's final goes out first
            utterance.held = partial
        else:
            utterance.shown_text = text
            self._results.put_nowait(partial)

    def _release_held_partial(self) -> None:
        utterance = self._current
        if utterance is not None and utterance.held is not None and utterance.closed is None:
            utterance.shown_text = utterance.held.text
            self._results.put_nowait(utterance.held)
            utterance.held = None

    def _sentence_cut(self, utterance: _Utterance, decoded: Decoded) -> _Cut | None:
        """In continuous speech (no pause long enough to end the utterance), a sentence whose words
        and full stop are stable, with speech after it, is final: cut it off at the quietest point
        before the next word, so the speaker's earlier sentences do not wait for a pause."""
        committed = utterance.stabilizer.committed
        ends = [i for i, w in enumerate(committed) if w.is_punctuation and ends_sentence(committed[: i + 1])]
        if not ends or ends[-1] == 0:
            return None
        after = _spoken_after(decoded.words, committed[ends[-1] - 1])
        following = [w for w in committed[ends[-1] + 1 :] if not w.is_punctuation] or after
        if not following:
            return None
        sentence = tuple(committed[: ends[-1] + 1])
        last_word = max((w for w in sentence if not w.is_punctuation), key=lambda w: w.end)
        lo = _samples(last_word.end) - _samples(0.05)
        hi = max(_samples(following[0].start) + _samples(0.05), lo + 1)
        return _Cut(Decoded(sentence, decoded.language, decoded.language_scores), lo, hi)

    def _emit_final(self, final: _Final) -> None:
        utterance, outcome = final.utterance, final.outcome
        assert outcome is not None
        words = [replace(w, stable=True) for w in outcome.decoded.words]  # the best decode, now fixed
        if self._speakers is not None:
            words = self._speakers.label_words(words, outcome.turns)
        if words:
            words = _not_before(words, self._timeline_end)
            self._timeline_end = words[-1].end
            self._context = (self._context + " " + join_words(words)).strip()[-_CONTEXT_CHARS:]
        final.context = self._context
        utterance.held = None
        if not words and utterance.shown_text is None:
            return
        self._results.put_nowait(
            self._result(utterance, words, outcome.decoded, partial=False, closed=final.closed)
        )

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

"""The voice session: an STT provider in, conversation turns (and optionally agent replies) out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field, replace
from types import TracebackType

from beluga_voice.aio import as_async_iter
from beluga_voice.errors import AudioFormatError, BelugaError, ConfigurationError
from beluga_voice.session.config import SessionConfig
from beluga_voice.session.dispatch import E, EventBus, EventCallback, EventStream
from beluga_voice.session.events import (
    AgentReplyCompleted,
    AgentReplyStarted,
    AgentTextDelta,
    ConnectionChanged,
    EndReason,
    ErrorSource,
    FinalTranscript,
    Interruption,
    PartialTranscript,
    SessionEnded,
    SessionError,
    SpeechEnded,
    SpeechStarted,
    StateChanged,
    UserTurnCompleted,
)
from beluga_voice.session.feed import AudioFeed
from beluga_voice.session.reply import Agent, AudioSink, SentenceBuffer, TextToSpeech, reply_text
from beluga_voice.session.state import SessionState, SessionStateError, StateMachine
from beluga_voice.session.turns import AGENT_SPEAKER, Turn, TurnDraft, TurnMetrics, TurnTracker
from beluga_voice.stt.model import TranscriptResult
from beluga_voice.stt.provider import ConnectionEvent, STTProvider
from beluga_voice.stt.registry import create_provider
from beluga_voice.stt.timeline import StreamTimeline
from beluga_voice.telemetry import SessionTelemetry, Telemetry
from beluga_voice.usage import SessionUsage

log = logging.getLogger("beluga_voice.session")

AudioSource = AsyncIterable[bytes] | Iterable[bytes]
"""s16le PCM pieces at the provider's rate and channel count (a paced file, a microphone, ...)."""

_RETRY_BACKOFF = 0.25
_RETRY_BACKOFF_MAX = 4.0


class _HookFailed(Exception):
    """A TTS hook or audio sink raised; carries which one, for the error event."""

    def __init__(self, source: ErrorSource, error: Exception) -> None:
        super().__init__(str(error))
        self.source: ErrorSource = source
        self.error = error


@dataclass
class _Reply:
    """The agent's reply in progress."""

    turn: Turn
    task: asyncio.Task[None] | None = None
    parts: list[str] = field(default_factory=list)
    started_at: float | None = None
    interrupted: bool = False

    @property
    def text(self) -> str:
        return "".join(self.parts).strip()


class VoiceSession:
    """A conversation over one STT stream: transcripts, user turns, and an optional agent.

    Only ``stt`` is required; with an ``agent`` the session answers each user turn, with ``tts`` and
    ``audio_sink`` it also speaks. Audio is s16le PCM at ``stt.sample_rate`` / ``stt.channels``.
    """

    def __init__(
        self,
        stt: STTProvider,
        config: SessionConfig | None = None,
        *,
        agent: Agent | None = None,
        tts: TextToSpeech | None = None,
        audio_sink: AudioSink | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        if not isinstance(stt, STTProvider):
            raise ConfigurationError(
                f"VoiceSession needs an STTProvider (e.g. create_provider('local')), got {type(stt).__name__}"
            )
        if config is not None and not isinstance(config, SessionConfig):
            raise ConfigurationError(f"config must be a SessionConfig, got {type(config).__name__}")
        for name, hook in (("agent", agent), ("tts", tts), ("audio_sink", audio_sink)):
            if hook is not None and not callable(hook):
                raise ConfigurationError(f"{name} must be callable, got {type(hook).__name__}")
        if tts is not None and agent is None:
            raise ConfigurationError("tts was given without an agent: there is no reply text to speak.")
        if (tts is None) != (audio_sink is None):
            raise ConfigurationError(
                "tts and audio_sink go together: tts makes the agent's audio, audio_sink plays it; "
                "pass both or neither."
            )
        self.stt = stt
        self.config = config or SessionConfig()
        self._agent = agent
        self._tts = tts
        self._audio_sink = audio_sink
        self._owns_stt = False
        self._telemetry = SessionTelemetry(
            stt.name,
            _text_attribute(stt, "region"),
            _text_attribute(stt, "language_code"),
            telemetry=telemetry,
        )
        self._bus = EventBus()
        self._machine = StateMachine(self._on_state_change)
        self._tracker = TurnTracker(self.config.end_of_turn_silence)
        self._history: list[Turn] = []
        self._metrics: dict[int, TurnMetrics] = {}
        self._speech_end_walls: dict[int, float | None] = {}
        self._feed: AudioFeed | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stt_task: asyncio.Task[None] | None = None
        self._agent_task: asyncio.Task[None] | None = None
        self._source_task: asyncio.Task[None] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._turns: asyncio.Queue[Turn | None] = asyncio.Queue()
        self._reply: _Reply | None = None
        self._turn_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_activity = 0.0
        self._closed = asyncio.Event()
        self.error: BaseException | None = None
        """The error that ended the session, if one did."""

    # -- what the application reads ---------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self.config.session_id

    @property
    def state(self) -> SessionState:
        return self._machine.state

    @property
    def sample_rate(self) -> int:
        """The rate of the PCM that ``process_audio`` and ``attach`` take (the provider's)."""
        return self.stt.sample_rate

    @property
    def channels(self) -> int:
        return self.stt.channels

    @property
    def history(self) -> tuple[Turn, ...]:
        """Every user and agent turn so far, in the order they ended."""
        return tuple(self._history)

    @property
    def metrics(self) -> tuple[TurnMetrics, ...]:
        """Latency figures of each user turn, in turn order."""
        return tuple(self._metrics[i] for i in sorted(self._metrics))

    @property
    def usage(self) -> SessionUsage:
        """Audio and billed seconds of every stream the session opened (with an estimated cost)."""
        return self._telemetry.usage

    @property
    def media_time(self) -> float:
        """Seconds of audio (keep-alive silence included) handed to the provider so far."""
        return self._feed.media_position if self._feed is not None else 0.0

    def on(self, event_type: type[E], callback: EventCallback[E]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of ``event_type`` (or a subclass); returns an
        unsubscribe function. Async callbacks are awaited in order, so keep them quick."""
        return self._bus.on(event_type, callback)

    def events(self) -> EventStream:
        """Every event from now until the session ends: ``async for event in session.events()``.

        Call it before ``start()`` to miss nothing."""
        return self._bus.events()

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the provider's stream; the session listens from now on."""
        if self.state is not SessionState.IDLE:
            raise SessionStateError(
                f"start() called on a session that is {self.state}; a session runs once, create a new one."
            )
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._feed = AudioFeed(
            sample_rate=self.stt.sample_rate,
            channels=self.stt.channels,
            max_pieces=self.config.input_queue_size,
            keep_alive_after=self.config.keep_alive_after if self.config.keep_alive else None,
            clock=loop.time,
        )
        self._bus.start()
        self._machine.move_to(SessionState.LISTENING)
        self._stt_task = asyncio.create_task(self._run_stt(), name=f"beluga-session-stt-{self.session_id}")
        if self._agent is not None:
            self._agent_task = asyncio.create_task(self._run_agent(), name="beluga-session-agent")
        self._touch()

    async def process_audio(self, data: bytes) -> None:
        """Send PCM audio (s16le at ``sample_rate``); waits if the provider falls far behind."""
        feed = self._accepting_feed("process_audio")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise AudioFormatError(
                f"process_audio expects s16le PCM bytes at {self.sample_rate} Hz, got {type(data).__name__}; "
                "convert with beluga_voice.audio.Audio(...).to_pcm16()."
            )
        if data:
            await feed.put(bytes(data))

    def attach(self, source: AudioSource, *, stop_at_end: bool = True) -> asyncio.Task[None]:
        """Stream audio from ``source`` in the background (a paced file, a microphone, any async
        iterator of PCM bytes). With ``stop_at_end`` the session stops, draining every result, when
        the source is exhausted. Returns the feeding task."""
        self._accepting_feed("attach")
        if self._source_task is not None and not self._source_task.done():
            raise SessionStateError("a source is already attached; a session reads one source at a time.")
        self._source_task = asyncio.create_task(self._pump(source, stop_at_end), name="beluga-session-source")
        return self._source_task

    async def stop(self, *, cancel_agent: bool = False) -> None:
        """End the input, deliver the last results and turns, let the agent finish (or cancel it
        with ``cancel_agent``), and close. Idempotent; never raises the session's error (see
        :meth:`wait_closed`)."""
        await self._shutdown("stopped", cancel_agent=cancel_agent)

    async def wait_closed(self) -> None:
        """Wait until the session has ended; raises the error that ended it, if any."""
        await self._closed.wait()
        if self.error is not None:
            raise self.error

    async def __aenter__(self) -> VoiceSession:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop(cancel_agent=exc is not None)

    # -- input ------------------------------------------------------------------------------------

    def _accepting_feed(self, what: str) -> AudioFeed:
        if self.state is SessionState.IDLE or self._feed is None:
            raise SessionStateError(f"{what}() before start(): call `await session.start()` first.")
        if self._shutdown_task is not None or self.state is SessionState.ENDED:
            cause = f" ({self.error})" if self.error is not None else ""
            raise SessionStateError(f"{what}() on a session that has stopped{cause}; start a new session.")
        return self._feed

    async def _pump(self, source: AudioSource, stop_at_end: bool) -> None:
        feed = self._feed
        if feed is None:
            return
        try:
            async for piece in as_async_iter(source):
                if piece:
                    await feed.put(bytes(piece))
        except SessionStateError:
            return  # the session stopped under the source's feet; nothing more to do
        except Exception as exc:
            self._fail(exc, "audio_source")
            return
        if stop_at_end:
            self._begin_shutdown("input_ended")

    # -- transcription ----------------------------------------------------------------------------

    async def _run_stt(self) -> None:
        feed = self._feed
        if feed is None:
            return
        with self._telemetry.collecting():
            await self._stream_with_restarts(feed)

    async def _stream_with_restarts(self, feed: AudioFeed) -> None:
        """Run the provider's stream; after a retryable failure, open a new one that first hears
        the audio the failed one left without finals (the shared :class:`StreamTimeline` keeps
        times continuous, drops words already delivered and withdraws dead partials)."""
        timeline = StreamTimeline(feed.bytes_per_second, replay_seconds=self.config.replay_seconds)
        attempt = 0
        failed_at: float | None = None
        while True:
            audio = feed.open_stream(timeline.begin_connection(), timeline.record)
            try:
                async for result in self.stt.stream(audio, on_connection_event=self._on_connection_event):
                    if attempt:
                        self._announce_restarted(attempt, failed_at)
                        attempt = 0
                    for placed in timeline.place([result]):
                        self._on_result(placed)
                if attempt:
                    self._announce_restarted(attempt, failed_at)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                retryable = isinstance(exc, BelugaError) and exc.retryable
                if not retryable or attempt >= self.config.max_retries:
                    self._fail(exc, "stt")
                    return
                attempt += 1
                failed_at = self._now()
                error = exc if isinstance(exc, BelugaError) else None
                log.warning(
                    "session %s: stream failed (%s); reopening, attempt %d", self.session_id, exc, attempt
                )
                self._bus.emit(
                    ConnectionChanged(
                        ConnectionEvent("reconnecting", attempt, error, detail="session reopening the stream")
                    )
                )
                for retraction in timeline.abandon_connection():
                    self._on_result(retraction)
                await asyncio.sleep(min(_RETRY_BACKOFF * 2 ** (attempt - 1), _RETRY_BACKOFF_MAX))

    def _announce_restarted(self, attempt: int, failed_at: float | None) -> None:
        downtime = self._now() - failed_at if failed_at is not None else 0.0
        self._bus.emit(
            ConnectionChanged(
                ConnectionEvent("reconnected", attempt, None, downtime, detail="session reopened the stream")
            )
        )

    def _on_connection_event(self, event: ConnectionEvent) -> None:
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self._bus.emit, ConnectionChanged(event))
        else:
            self._bus.emit(ConnectionChanged(event))

    def _on_result(self, result: TranscriptResult) -> None:
        feed = self._feed
        if feed is None:
            return
        now = self._now()
        self._touch()
        update = self._tracker.on_result(result, now)
        speaker = result.speaker
        if result.is_partial:
            for draft in update.finished:
                self._complete_turn(draft, now)
            if update.speech_started:
                self._bus.emit(SpeechStarted(result.start, speaker))
            self._check_barge_in(result)
            self._refresh_state()
            self._bus.emit(PartialTranscript(result))
        else:
            if update.speech_started:
                self._bus.emit(SpeechStarted(result.start, speaker))
            spoken_at = feed.wall_at(result.end)
            self._bus.emit(FinalTranscript(result, now - spoken_at if spoken_at is not None else None))
            if update.speech_ended:
                self._bus.emit(SpeechEnded(result.end, speaker))
            for draft in update.finished:
                self._complete_turn(draft, now)
            self._check_barge_in(result)
            self._refresh_state()
        self._schedule_turn_end()

    # -- turns ------------------------------------------------------------------------------------

    def _complete_turn(self, draft: TurnDraft, now: float) -> None:
        turn = Turn(
            index=len(self._history),
            role="user",
            speaker=draft.speaker,
            text=draft.text,
            start=draft.start,
            end=draft.end,
            words=tuple(draft.words),
        )
        self._history.append(turn)
        spoken_at = self._feed.wall_at(turn.end) if self._feed is not None else None
        final_latency = (
            draft.final_received_at - spoken_at
            if spoken_at is not None and draft.final_received_at is not None
            else None
        )
        metrics = TurnMetrics(
            turn_index=turn.index,
            speech_end=turn.end,
            final_latency=final_latency,
            turn_latency=now - spoken_at if spoken_at is not None else None,
        )
        self._metrics[turn.index] = metrics
        self._speech_end_walls[turn.index] = spoken_at
        if self._feed is not None:
            self._feed.forget_before(turn.end)
        self._bus.emit(UserTurnCompleted(turn, metrics))
        if self._agent is not None:
            self._turns.put_nowait(turn)
        else:
            self._telemetry.turn(final_latency=final_latency)

    def _schedule_turn_end(self) -> None:
        if self._turn_timer is not None:
            self._turn_timer.cancel()
            self._turn_timer = None
        deadline = self._tracker.deadline
        if deadline is not None and self._loop is not None:
            self._turn_timer = self._loop.call_at(deadline, self._on_turn_deadline, deadline)

    def _on_turn_deadline(self, deadline: float) -> None:
        self._turn_timer = None
        if self.state is SessionState.ENDED:
            return
        now = self._now()
        draft = self._tracker.on_deadline(max(now, deadline))
        if draft is not None:
            self._complete_turn(draft, now)
            self._refresh_state()
        else:
            self._schedule_turn_end()

    # -- the agent --------------------------------------------------------------------------------

    async def _run_agent(self) -> None:
        while True:
            turn = await self._turns.get()
            if turn is None:
                return
            reply = _Reply(turn)
            self._reply = reply
            reply.task = asyncio.create_task(self._produce_reply(reply), name="beluga-session-reply")
            self._refresh_state()
            try:
                await asyncio.wait({reply.task})
            finally:
                if not reply.task.done():
                    reply.task.cancel()
                self._reply = None
                self._finish_reply(reply)
                self._report_turn(turn)
                self._refresh_state()

    async def _produce_reply(self, reply: _Reply) -> None:
        if self._agent is None:
            return
        sentences = SentenceBuffer() if self._tts is not None else None
        try:
            async for piece in reply_text(self._agent, reply.turn, tuple(self._history)):
                if reply.started_at is None:
                    self._reply_started(reply)
                reply.parts.append(piece)
                self._touch()
                self._bus.emit(AgentTextDelta(reply.turn, piece))
                if sentences is not None:
                    for sentence in sentences.feed(piece):
                        await self._speak(sentence)
            if sentences is not None and (rest := sentences.flush()):
                await self._speak(rest)
        except _HookFailed as failure:
            self._bus.emit(SessionError(failure.error, failure.source, fatal=False))
        except Exception as exc:
            log.exception("session %s: the agent failed on turn %d", self.session_id, reply.turn.index)
            self._bus.emit(SessionError(exc, "agent", fatal=False))

    def _reply_started(self, reply: _Reply) -> None:
        now = self._now()
        reply.started_at = self.media_time
        spoken_at = self._speech_end_walls.get(reply.turn.index)
        latency = now - spoken_at if spoken_at is not None else None
        metrics = self._metrics.get(reply.turn.index)
        if metrics is not None:
            self._metrics[reply.turn.index] = replace(metrics, reply_latency=latency)
        self._bus.emit(AgentReplyStarted(reply.turn, latency))
        self._refresh_state()

    async def _speak(self, text: str) -> None:
        """Synthesise one sentence and play it; failures name the hook that failed."""
        if self._tts is None or self._audio_sink is None:
            return
        try:
            chunks = aiter(self._tts(text))
        except Exception as exc:
            raise _HookFailed("tts", exc) from exc
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except Exception as exc:
                raise _HookFailed("tts", exc) from exc
            try:
                await self._audio_sink(chunk)
            except Exception as exc:
                raise _HookFailed("audio_sink", exc) from exc

    def _report_turn(self, turn: Turn) -> None:
        """Telemetry for a user turn whose reply is over (or will never come)."""
        metrics = self._metrics.get(turn.index)
        if metrics is not None:
            self._telemetry.turn(final_latency=metrics.final_latency, reply_latency=metrics.reply_latency)

    def _finish_reply(self, reply: _Reply) -> None:
        if reply.started_at is None:
            return
        agent_turn = Turn(
            index=len(self._history),
            role="agent",
            speaker=AGENT_SPEAKER,
            text=reply.text,
            start=reply.started_at,
            end=self.media_time,
            interrupted=reply.interrupted,
        )
        self._history.append(agent_turn)
        self._bus.emit(AgentReplyCompleted(agent_turn, reply.turn))

    def _check_barge_in(self, result: TranscriptResult) -> None:
        reply = self._reply
        if not self.config.barge_in or reply is None or reply.interrupted:
            return
        if reply.task is None or reply.task.done():
            return
        spoken = [w for w in result.words if not w.is_punctuation]
        count = len(spoken) if result.words else len(result.text.split())
        duration = spoken[-1].end - spoken[0].start if spoken else result.end - result.start
        if count < self.config.barge_in_min_words or duration < self.config.barge_in_min_duration:
            return
        reply.interrupted = True
        self._telemetry.interruption()
        self._bus.emit(Interruption(reply.turn, reply.text, result.text, result.start))
        reply.task.cancel()

    # -- state, activity, failure, shutdown -------------------------------------------------------

    def _refresh_state(self) -> None:
        if self.state in (SessionState.IDLE, SessionState.ENDED):
            return
        reply = self._reply
        if reply is not None and not reply.interrupted:
            target = SessionState.AGENT_SPEAKING if reply.started_at is not None else SessionState.PROCESSING
        elif self._tracker.has_open_turn:
            target = SessionState.USER_SPEAKING
        else:
            target = SessionState.LISTENING
        self._machine.move_to(target)

    def _on_state_change(self, old: SessionState, new: SessionState) -> None:
        self._bus.emit(StateChanged(old, new))

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def _touch(self) -> None:
        """Something happened: push the inactivity timeout back."""
        self._last_activity = self._now()
        if self.config.inactivity_timeout is not None and self._idle_timer is None and self._loop is not None:
            self._idle_timer = self._loop.call_at(
                self._last_activity + self.config.inactivity_timeout, self._on_idle_timer
            )

    def _on_idle_timer(self) -> None:
        self._idle_timer = None
        timeout = self.config.inactivity_timeout
        if timeout is None or self.state is SessionState.ENDED or self._loop is None:
            return
        due = self._last_activity + timeout
        if self._now() >= due:
            log.info("session %s: no activity for %.0f s; ending", self.session_id, timeout)
            self._begin_shutdown("inactivity_timeout")
        else:
            self._idle_timer = self._loop.call_at(due, self._on_idle_timer)

    def _fail(self, error: Exception, source: ErrorSource) -> None:
        """A fatal error: report it, refuse further audio, and end the session."""
        if self.error is None:
            self.error = error
        log.error("session %s: %s failed: %s", self.session_id, source, error)
        self._bus.emit(SessionError(error, source, fatal=True))
        if source == "stt" and self._feed is not None:
            self._feed.abort(error)  # audio sent into a dead stream would be lost silently
        self._begin_shutdown("error")

    def _begin_shutdown(self, reason: EndReason) -> None:
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.create_task(self._close(reason, cancel_agent=False))

    async def _shutdown(self, reason: EndReason, *, cancel_agent: bool) -> None:
        if self.state is SessionState.IDLE and self._shutdown_task is None:
            self._machine.move_to(SessionState.ENDED)
            self._bus.emit(SessionEnded(reason, ()))
            await self._bus.close()
            self._closed.set()
            return
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.create_task(self._close(reason, cancel_agent=cancel_agent))
        elif cancel_agent:
            self._cancel_agent()
        await asyncio.shield(self._shutdown_task)

    async def _close(self, reason: EndReason, *, cancel_agent: bool) -> None:
        try:
            await self._drain(reason, cancel_agent=cancel_agent)
        except Exception as exc:  # a bug must not leave wait_closed() hanging
            log.exception("session %s: closing failed", self.session_id)
            if self.error is None:
                self.error = exc
        finally:
            for timer in (self._turn_timer, self._idle_timer):
                if timer is not None:
                    timer.cancel()
            self._turn_timer = self._idle_timer = None
            if self.state is not SessionState.ENDED:
                self._machine.move_to(SessionState.ENDED)
            self._bus.emit(SessionEnded("error" if self.error is not None else reason, tuple(self._history)))
            await self._bus.close()
            if self._owns_stt:
                await self.stt.aclose()
            self._closed.set()

    async def _drain(self, reason: EndReason, *, cancel_agent: bool) -> None:
        """End the input, then let results, the last turn and the agent's replies come out."""
        source = self._source_task
        if source is not None and source is not asyncio.current_task() and not source.done():
            source.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await source
        if self._feed is not None:
            self._feed.end()
        if self._stt_task is not None:
            await self._stt_task
        if self._turn_timer is not None:
            self._turn_timer.cancel()
            self._turn_timer = None
        draft = self._tracker.flush(self._now())
        if draft is not None:
            self._complete_turn(draft, self._now())
        self._refresh_state()
        if self._agent_task is not None:
            if cancel_agent or self.error is not None:
                self._cancel_agent()
            self._turns.put_nowait(None)
            await self._agent_task

    def _cancel_agent(self) -> None:
        """Drop queued turns and cut the reply in progress."""
        ending = False
        while not self._turns.empty():
            dropped = self._turns.get_nowait()
            if dropped is None:
                ending = True
            else:
                self._report_turn(dropped)
        if ending:
            self._turns.put_nowait(None)
        reply = self._reply
        if reply is not None and reply.task is not None:
            reply.task.cancel()


def _text_attribute(provider: STTProvider, name: str) -> str | None:
    value = getattr(provider, name, None)
    return value if isinstance(value, str) else None


def create_voice_session(
    stt: STTProvider | str,
    config: SessionConfig | None = None,
    *,
    agent: Agent | None = None,
    tts: TextToSpeech | None = None,
    audio_sink: AudioSink | None = None,
    telemetry: Telemetry | None = None,
) -> VoiceSession:
    """The guide's entry point: a session from an STT provider (or a registered provider name,
    which the session then owns and closes) and a config (defaults when omitted)."""
    if isinstance(stt, str):
        provider = create_provider(stt)
        session = VoiceSession(
            provider, config, agent=agent, tts=tts, audio_sink=audio_sink, telemetry=telemetry
        )
        session._owns_stt = True
        return session
    return VoiceSession(stt, config, agent=agent, tts=tts, audio_sink=audio_sink, telemetry=telemetry)

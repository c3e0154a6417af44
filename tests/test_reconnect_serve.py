"""Each failure a stream meets, injected by `beluga serve` on loopback (real engine, real speech):
the stream survives it with every word once, or - for failures a new connection cannot cure - fails
at once with one connection attempt."""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import ReadOnlyCredentials

from beluga_voice.errors import (
    BelugaError,
    ConfigurationError,
    CredentialsError,
    RateLimitError,
    ServiceError,
    StreamConnectionError,
    StreamTimeoutError,
)
from beluga_voice.providers.aws_transcribe import IdlePolicy, ReconnectPolicy
from beluga_voice.server import Credential, FaultPlan, LocalEngineFactory
from beluga_voice.stt.model import Word
from beluga_voice.telemetry import Telemetry
from beluga_voice.telemetry.metrics import MetricSpec
from reconnect_kit import KEY, ROTATED, aws, reference_words, run_stream, serving, two_utterances
from reconnect_kit import assert_each_word_once as each_word_once

pytestmark = pytest.mark.model

SPEED = 2.0  # faults are timed in wall seconds: at twice real time they land inside the speech
AFTER_FIRST_FINAL = 2.6
"""Wall seconds into a connection when the first utterance is final and the second half spoken:
the replay then holds delivered words (to drop) and words cut by the fault (to recover)."""
FAST = ReconnectPolicy(base_delay=0.05, max_delay=0.5)


@pytest.fixture(scope="module")
def engine() -> LocalEngineFactory:
    return LocalEngineFactory()


@pytest.fixture(scope="module")
def clip(data_dir: Path) -> bytes:
    return two_utterances(data_dir)


@pytest.fixture(scope="module")
def reference(engine: LocalEngineFactory, clip: bytes) -> list[Word]:
    return reference_words(engine, clip, max_speed=SPEED)


def session_ids(details: list[str]) -> list[str]:
    return [m.group(1) for d in details if (m := re.search(r"session-id=(\S+)", d))]


def stream_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("stream session=")]


async def test_a_dropped_connection_is_replaced_without_losing_or_repeating_a_word(
    engine: LocalEngineFactory, clip: bytes, reference: list[Word]
) -> None:
    async with serving(engine, faults=FaultPlan(drop_after=AFTER_FIRST_FINAL, streams=1)) as server:
        stt = aws(server, max_speed=SPEED, reconnect=FAST)
        run = await run_stream(stt, clip)
    each_word_once(run, reference)
    assert run.kinds() == ["connected", "disconnected", "reconnecting", "reconnected", "closed"]
    dropped, reconnected = run.events[1], run.events[3]
    assert isinstance(dropped.error, StreamConnectionError) and dropped.error.retryable
    assert 0 < reconnected.downtime < 2.0 and reconnected.replayed_seconds > 0
    first, second = session_ids([run.events[0].detail, reconnected.detail])
    assert first != second  # a new session id for the new connection
    stats = stt.last_stream_stats
    assert stats is not None and (stats.reconnects, stats.connections, stats.errors) == (1, 2, ["connection"])
    assert stats.replayed_seconds == pytest.approx(reconnected.replayed_seconds)
    assert stats.lost_seconds == 0


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("InternalFailureException", ServiceError),
        ("ServiceUnavailableException", ServiceError),
        ("LimitExceededException", RateLimitError),
    ],
)
async def test_service_faults_mid_stream_are_survived(
    engine: LocalEngineFactory, clip: bytes, reference: list[Word], name: str, kind: type[ServiceError]
) -> None:
    plan = FaultPlan(exception_after=AFTER_FIRST_FINAL, exception_name=name, streams=1)
    async with serving(engine, faults=plan) as server:
        run = await run_stream(aws(server, max_speed=SPEED, reconnect=FAST), clip)
    each_word_once(run, reference)
    (failure,) = [e for e in run.events if e.kind == "disconnected"]
    assert type(failure.error) is kind and failure.error.exception_name == name


@pytest.mark.parametrize(
    ("status", "kind"), [(500, ServiceError), (503, ServiceError), (429, RateLimitError)]
)
async def test_refused_upgrades_are_retried_with_backoff(
    engine: LocalEngineFactory, clip: bytes, reference: list[Word], status: int, kind: type[BelugaError]
) -> None:
    async with serving(engine, faults=FaultPlan(refuse_status=status, streams=2)) as server:
        run = await run_stream(aws(server, max_speed=SPEED, reconnect=FAST), clip)
    each_word_once(run, reference)
    retries = [e for e in run.events if e.kind == "reconnecting"]
    assert [e.attempt for e in retries] == [2, 3] and all(type(e.error) is kind for e in retries)
    assert run.kinds()[-2:] == ["connected", "closed"]


class SkewedClock:
    """The server's clock, ten minutes ahead for the first ``skewed`` handshakes: URLs look expired."""

    def __init__(self, skewed: int) -> None:
        self.skewed = skewed

    def __call__(self) -> datetime:
        now = datetime.now(UTC)
        if self.skewed > 0:
            self.skewed -= 1
            return now + timedelta(minutes=10)
        return now


@pytest.mark.parametrize("rejection", ["frame", "http"])
async def test_an_expired_signature_gets_a_freshly_signed_url(
    engine: LocalEngineFactory, clip: bytes, reference: list[Word], rejection: Any
) -> None:
    async with serving(engine, clock=SkewedClock(1), rejection=rejection) as server:
        run = await run_stream(aws(server, max_speed=SPEED, reconnect=FAST), clip)
    each_word_once(run, reference)
    expired = next(e.error for e in run.events if e.error is not None)
    assert (
        isinstance(expired, CredentialsError) and expired.retryable and "expired" in expired.message.lower()
    )


class RotatingCredentials:
    """A credential provider whose keys rotate: every resolution hands out the next key pair."""

    def __init__(self, *keys: Credential) -> None:
        self.keys = keys
        self.resolved = 0

    def resolve(self) -> ReadOnlyCredentials:
        key = self.keys[self.resolved % len(self.keys)]
        self.resolved += 1
        return ReadOnlyCredentials(key.access_key_id, key.secret_access_key, key.session_token)


async def test_every_connection_resolves_credentials_again(
    engine: LocalEngineFactory, clip: bytes, reference: list[Word], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="beluga_voice.server")
    rotating = RotatingCredentials(KEY, ROTATED)
    async with serving(engine, faults=FaultPlan(drop_after=AFTER_FIRST_FINAL, streams=1)) as server:
        run = await run_stream(aws(server, credentials=rotating, max_speed=SPEED, reconnect=FAST), clip)
    each_word_once(run, reference)
    keys = [re.search(r"key=(\S+)", line).group(1) for line in stream_lines(caplog)]  # type: ignore[union-attr]
    assert keys == [f"...{KEY.access_key_id[-4:]}", f"...{ROTATED.access_key_id[-4:]}"]
    assert rotating.resolved == 2


async def test_silence_is_kept_alive_past_the_idle_rule(
    engine: LocalEngineFactory, clip: bytes, reference: list[Word]
) -> None:
    idle = IdlePolicy(after=0.2, flush_seconds=0.3, interval=0.4)
    async with serving(engine, idle_timeout=1.0) as server:
        stt = aws(server, max_speed=SPEED, reconnect=FAST, idle=idle)
        run = await run_stream(stt, clip, stalls={3.8: 3.0})  # the application sends nothing for 3 s
    # One connection, no timeout, and times on the application's audio: the silence sent to keep the
    # connection open does not move the second utterance.
    each_word_once(run, reference)
    stats = stt.last_stream_stats
    assert stats is not None and stats.connections == 1 and stats.errors == []
    assert 0.5 <= stats.keepalive_seconds <= 1.5


async def test_lazy_idle_closes_cleanly_and_reopens_when_audio_resumes(
    engine: LocalEngineFactory, clip: bytes, reference: list[Word]
) -> None:
    async with serving(engine, idle_timeout=1.0) as server:
        stt = aws(server, max_speed=SPEED, reconnect=FAST, idle=IdlePolicy(mode="lazy", close_after=0.4))
        run = await run_stream(stt, clip, stalls={3.8: 3.0})
    each_word_once(run, reference)
    stats = stt.last_stream_stats
    assert stats is not None and (stats.connections, stats.idle_closes, stats.reconnects) == (2, 1, 0)
    assert stats.keepalive_seconds == 0 and stats.errors == []
    assert run.kinds() == ["connected", "closed", "connected", "closed"]


async def test_lazy_mode_waits_for_audio_before_reconnecting_and_its_budget_starts_then(
    engine: LocalEngineFactory, clip: bytes, reference: list[Word]
) -> None:
    # The service times the idle connection out before the lazy close: the reconnection waits for
    # the audio to resume, and a pause longer than the outage budget is not an outage.
    lazy = IdlePolicy(mode="lazy", close_after=5.0)
    policy = ReconnectPolicy(base_delay=0.05, max_outage=1.0)
    async with serving(engine, idle_timeout=1.0) as server:
        stt = aws(server, max_speed=SPEED, reconnect=policy, idle=lazy)
        run = await run_stream(stt, clip, stalls={3.8: 3.0})
    each_word_once(run, reference)
    stats = stt.last_stream_stats
    assert stats is not None and stats.errors == ["timeout"] and stats.reconnects == 1


async def test_without_idle_handling_the_idle_timeout_is_one_more_reconnection(
    engine: LocalEngineFactory, clip: bytes, reference: list[Word]
) -> None:
    async with serving(engine, idle_timeout=1.0) as server:
        stt = aws(server, max_speed=SPEED, reconnect=FAST, idle=None)
        run = await run_stream(stt, clip, stalls={3.8: 3.0})
    each_word_once(run, reference)
    timeout = next(e.error for e in run.events if e.kind == "disconnected")
    assert isinstance(timeout, StreamTimeoutError) and "no new audio" in timeout.message


async def test_results_held_back_while_pings_are_answered_keep_the_one_connection(
    engine: LocalEngineFactory, clip: bytes, reference: list[Word]
) -> None:
    # No transcript for 5 s while speech flows is a slow or quiet service, not a dead connection.
    async with serving(engine, faults=FaultPlan(result_delay=5.0)) as server:
        stt = aws(server, max_speed=SPEED, reconnect=FAST, ping_interval=0.5, ping_timeout=2.0)
        run = await run_stream(stt, clip)
    each_word_once(run, reference)
    stats = stt.last_stream_stats
    assert stats is not None and (stats.connections, stats.errors) == (1, [])
    assert stats.sent_seconds == pytest.approx(stats.audio_seconds)


async def test_a_server_that_stops_answering_pings_is_replaced_promptly_losing_nothing(
    engine: LocalEngineFactory, clip: bytes, reference: list[Word]
) -> None:
    async with serving(engine, faults=FaultPlan(stall_after=AFTER_FIRST_FINAL, streams=1)) as server:
        stt = aws(server, max_speed=SPEED, reconnect=FAST, ping_interval=0.5, ping_timeout=1.0)
        run = await run_stream(stt, clip)
    each_word_once(run, reference)
    dead = next(e for e in run.events if e.kind == "disconnected")
    assert isinstance(dead.error, StreamTimeoutError) and "neither a WebSocket ping" in dead.error.message
    reconnected = next(e for e in run.events if e.kind == "reconnected")
    # Noticed within a ping interval + the ping timeout + the close timeout (+ scheduling slack).
    assert reconnected.downtime < 1.0
    stats = stt.last_stream_stats
    assert stats is not None and (stats.dead_connections, stats.connections) == (1, 2)
    assert stats.lost_seconds == 0


async def test_a_service_that_keeps_failing_is_given_up_within_the_attempt_budget(
    engine: LocalEngineFactory, clip: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="beluga_voice.server")
    policy = ReconnectPolicy(max_attempts=3, base_delay=0.05)
    async with serving(engine, faults=FaultPlan(refuse_status=503)) as server:
        stt = aws(server, reconnect=policy)
        with pytest.raises(ServiceError) as raised:
            await run_stream(stt, clip)
    assert len(stream_lines(caplog)) == 3
    assert "gave up reconnecting after 3 connection attempt(s)" in "".join(raised.value.__notes__)


async def test_a_service_that_keeps_failing_is_given_up_within_the_outage_time(
    engine: LocalEngineFactory, clip: bytes
) -> None:
    policy = ReconnectPolicy(max_attempts=1000, max_outage=1.0, base_delay=0.05, max_delay=0.2)
    run_events: list[str] = []
    async with serving(engine, faults=FaultPlan(refuse_status=503)) as server:
        started = time.monotonic()
        with pytest.raises(ServiceError):
            async for _ in aws(server, reconnect=policy).stream(
                [clip], on_connection_event=lambda e: run_events.append(e.kind)
            ):
                pass
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0 and run_events[-1] == "disconnected" and run_events.count("reconnecting") >= 3


def wrong_secret(server_options: dict[str, Any]) -> dict[str, Any]:
    return {"credentials": (KEY.access_key_id, "not-the-secret-key-at-all-0000000000")}


def unknown_key(server_options: dict[str, Any]) -> dict[str, Any]:
    return {"credentials": ("AKIDNOBODYKNOWS00000", "whatever-secret-0000000000000000000")}


def unsupported_language(server_options: dict[str, Any]) -> dict[str, Any]:
    # Zulu is a Transcribe language that no Whisper model knows: refused at the handshake, for good.
    return {"language_code": None, "identify_language": True, "language_options": ["zu-ZA", "en-US"]}


@pytest.mark.parametrize("rejection", ["frame", "http"])
@pytest.mark.parametrize(
    ("client", "kind"),
    [
        (wrong_secret, CredentialsError),
        (unknown_key, CredentialsError),
        (unsupported_language, ConfigurationError),
    ],
)
async def test_fatal_errors_fail_fast_after_one_connection_attempt(
    engine: LocalEngineFactory,
    clip: bytes,
    caplog: pytest.LogCaptureFixture,
    rejection: Any,
    client: Callable[[dict[str, Any]], Mapping[str, Any]],
    kind: type[BelugaError],
) -> None:
    caplog.set_level(logging.INFO, logger="beluga_voice.server")
    events: defaultdict[str, int] = defaultdict(int)
    async with serving(engine, rejection=rejection) as server:
        stt = aws(server, reconnect=ReconnectPolicy(base_delay=0.05), **client({}))
        started = time.monotonic()
        with pytest.raises(kind) as raised:
            async for _ in stt.stream(
                [clip], on_connection_event=lambda e: events.__setitem__(e.kind, events[e.kind] + 1)
            ):
                pass
    assert not raised.value.retryable
    assert len(stream_lines(caplog)) == 1  # exactly one connection attempt, no retry storm
    assert events["reconnecting"] == 0 and events["disconnected"] == 1
    assert time.monotonic() - started < 5.0


async def test_reconnections_are_counted_in_the_stream_metrics(
    engine: LocalEngineFactory, clip: bytes
) -> None:
    recorded: defaultdict[str, float] = defaultdict(float)

    class Recorder:
        def record(self, spec: MetricSpec, value: float, attributes: Mapping[str, str]) -> None:
            recorded[spec.name] += value

    hub = Telemetry()
    hub.add_sink(Recorder())
    async with serving(engine, faults=FaultPlan(drop_after=AFTER_FIRST_FINAL, streams=1)) as server:
        stt = aws(server, max_speed=SPEED, reconnect=FAST, telemetry=hub)
        await run_stream(stt, clip)
    stats = stt.last_stream_stats
    assert stats is not None
    assert recorded["beluga.stt.reconnects"] == 1
    assert recorded["beluga.stt.replayed_seconds"] == pytest.approx(stats.replayed_seconds)
    assert recorded["beluga.stt.audio_seconds"] == pytest.approx(stats.audio_seconds)
    assert recorded["beluga.stt.errors"] == 1

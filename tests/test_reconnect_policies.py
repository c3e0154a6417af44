"""The decisions behind reconnection, sans-I/O: backoff with full jitter, the outage budget, the
idle schedule (keep-alive or lazy close), the drain watch, and the options' checks."""

from __future__ import annotations

import random
import statistics

import pytest

from beluga_voice.errors import (
    ConfigurationError,
    CredentialsError,
    ServiceError,
    StreamConnectionError,
    StreamTimeoutError,
)
from beluga_voice.providers.aws_transcribe import AWSTranscribeSTT, IdlePolicy, ReconnectPolicy
from beluga_voice.providers.aws_transcribe.backoff import Backoff, Outage
from beluga_voice.providers.aws_transcribe.keepalive import DrainWatch, IdleScheduler

CREDENTIALS = ("AKIDEXAMPLEPOLICY001", "policy/test/secret/000000000000000000")


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    backoff = Backoff(base=0.2, cap=5.0)
    assert [backoff.bound(n) for n in range(1, 8)] == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])
    rng = random.Random(7)
    for attempt in (1, 3, 6):
        draws = [backoff.delay(attempt, rng) for _ in range(2000)]
        assert min(draws) >= 0.0 and max(draws) < backoff.bound(attempt)
        # Full jitter: uniform over the whole range, so clients hit together spread out.
        assert statistics.mean(draws) == pytest.approx(backoff.bound(attempt) / 2, rel=0.08)
        assert min(draws) < 0.1 * backoff.bound(attempt)


def test_an_outage_ends_at_the_attempt_or_time_budget() -> None:
    outage = Outage(started=100.0)
    assert not outage.exhausted(101.0, max_attempts=3, max_seconds=30.0)
    outage.attempts = 3
    assert outage.exhausted(101.0, max_attempts=3, max_seconds=30.0)
    assert Outage(started=100.0).exhausted(130.0, max_attempts=3, max_seconds=30.0)
    assert outage.describe(105.0) == "3 connection attempt(s) in 5.0 s"


def test_only_typed_retryable_errors_are_retried() -> None:
    policy = ReconnectPolicy()
    assert policy.retries(StreamConnectionError("dropped"))
    assert policy.retries(ServiceError("InternalFailureException", "oops"))
    assert policy.retries(StreamTimeoutError("idle"))
    assert policy.retries(CredentialsError("Signature expired", retryable=True))
    assert not policy.retries(CredentialsError("wrong secret"))
    assert not policy.retries(ServiceError("BadRequestException", "bad"))
    assert not policy.retries(ValueError("a bug"))
    assert not ReconnectPolicy(enabled=False).retries(StreamConnectionError("dropped"))


def test_keepalive_flushes_in_real_time_then_sends_sparse_silence() -> None:
    scheduler = IdleScheduler(IdlePolicy(after=1.0, flush_seconds=0.3, interval=5.0), now=0.0)
    assert scheduler.next_action(0.5) == ("wait", 0.5)
    sent: list[float] = []
    now = 1.0
    while now < 12.0:
        action, wait = scheduler.next_action(now)
        if action == "keepalive":
            sent.append(round(now, 2))
            scheduler.keepalive_sent(now, 0.1)
        else:
            now += max(wait, 0.01)
    # 0.3 s of trailing silence at real-time pace, then one chunk every 5 s.
    assert sent == [1.0, 1.1, 1.2, 6.2, 11.2]
    scheduler.audio(11.5)  # the application speaks again: the idle period is over
    assert scheduler.next_action(11.6)[0] == "wait"


def test_without_a_connection_keepalive_waits_an_interval() -> None:
    scheduler = IdleScheduler(IdlePolicy(after=1.0, flush_seconds=1.0, interval=3.0), now=0.0)
    assert scheduler.next_action(1.0)[0] == "keepalive"
    scheduler.keepalive_skipped(1.0)
    assert scheduler.next_action(1.5) == ("wait", 2.5)


def test_lazy_mode_closes_after_the_idle_time_and_then_waits_for_audio() -> None:
    scheduler = IdleScheduler(IdlePolicy(mode="lazy", close_after=10.0), now=0.0)
    assert scheduler.next_action(9.0) == ("wait", 1.0)
    assert scheduler.next_action(10.0) == ("close", 0.0)
    scheduler.closed()
    assert scheduler.next_action(30.0)[0] == "wait"
    scheduler.audio(31.0)
    assert scheduler.next_action(40.0)[0] == "wait" and scheduler.next_action(41.0)[0] == "close"


def test_while_audio_flows_no_amount_of_result_silence_is_a_stall() -> None:
    watch = DrainWatch(drain_timeout=5.0)
    assert watch.deadline() is None and watch.check(10_000.0) is None  # liveness is the pings' job


def test_after_the_end_of_audio_the_drain_is_bounded() -> None:
    watch = DrainWatch(drain_timeout=5.0)
    watch.ended(10.0)
    watch.message(12.0)  # results still coming: the service is working
    assert watch.deadline() == 17.0 and watch.check(16.9) is None
    error = watch.check(17.0)
    assert isinstance(error, StreamTimeoutError) and error.retryable
    assert "after the end of the audio" in error.message


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_outage": 0}, "max_outage"),
        ({"base_delay": 9.0}, "base_delay"),
        ({"overlap_seconds": -1}, "overlap_seconds"),
    ],
)
def test_reconnect_policy_values_are_checked(options: dict[str, float], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        ReconnectPolicy(**options)  # type: ignore[arg-type]


def test_idle_policy_values_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="'keepalive' or 'lazy'"):
        IdlePolicy(mode="sleep")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="interval"):
        IdlePolicy(interval=0)


def test_provider_options_name_the_accepted_values() -> None:
    with pytest.raises(ConfigurationError, match="reconnect= takes True, False or a ReconnectPolicy"):
        AWSTranscribeSTT(credentials=CREDENTIALS, reconnect="always")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="idle= takes 'keepalive', 'lazy', None"):
        AWSTranscribeSTT(credentials=CREDENTIALS, idle="silence")  # type: ignore[arg-type]
    stt = AWSTranscribeSTT(credentials=CREDENTIALS, reconnect=False, idle="lazy")
    assert not stt.reconnect_policy.enabled and stt.idle_policy is not None and stt.idle_policy.mode == "lazy"
    assert AWSTranscribeSTT(credentials=CREDENTIALS).idle_policy == IdlePolicy()  # keep-alive by default


@pytest.mark.parametrize("name", ["ping_interval", "ping_timeout"])
def test_ping_settings_must_be_positive(name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{name}=0 must be positive"):
        AWSTranscribeSTT(credentials=CREDENTIALS, **{name: 0})  # type: ignore[arg-type]

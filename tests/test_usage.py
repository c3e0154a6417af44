"""Billed seconds and the cost estimate: per-second rounding, the per-request minimum, reconnects."""

from __future__ import annotations

import pytest

from beluga_voice.errors import ConfigurationError
from beluga_voice.usage import (
    DEFAULT_RATE_PER_MINUTE,
    TRANSCRIBE_STREAMING,
    SessionUsage,
    StreamUsage,
    billing_rule_for,
    cost,
    format_usage,
)


@pytest.mark.parametrize(
    ("sent", "billed"),
    [
        (0.0, 0.0),  # a connection that carried nothing is not counted
        (0.1, 15.0),  # the 15 s minimum per request
        (14.9, 15.0),
        (15.0, 15.0),
        (15.01, 16.0),  # one-second increments, rounded up
        (60.0 - 1e-9, 60.0),  # float noise does not cost a whole extra second
        (3600.0, 3600.0),
    ],
)
def test_transcribe_bills_whole_seconds_with_a_15_second_minimum(sent: float, billed: float) -> None:
    assert TRANSCRIBE_STREAMING.billable(sent) == billed


def test_only_the_aws_provider_bills() -> None:
    assert billing_rule_for("aws") is TRANSCRIBE_STREAMING
    assert billing_rule_for("local") is None


def test_every_reconnect_is_a_request_with_its_own_minimum() -> None:
    # 40 s of speech, cut twice: 10 s, then 2 s of replay + 4 s, then 2 s of replay + 26 s, plus 6 s keep-alive
    usage = StreamUsage(
        "aws",
        "us-east-1",
        "en-US",
        audio_seconds=40.0,
        keepalive_seconds=6.0,
        replayed_seconds=4.0,
        requests=(10.0, 6.0, 34.0),
        billing=TRANSCRIBE_STREAMING,
    )
    assert usage.sent_seconds == 50.0
    assert usage.billed_seconds == 15.0 + 15.0 + 34.0
    assert usage.cost(0.024) == pytest.approx(64 / 60 * 0.024)
    doc = usage.to_dict(0.024)
    assert doc["requests"] == 3 and doc["billed_seconds"] == 64.0 and doc["currency"] == "USD"
    assert doc["estimated_cost"] == pytest.approx(0.0256)


def test_format_usage_says_it_is_an_estimate_and_shows_the_rate() -> None:
    usage = StreamUsage("aws", audio_seconds=30.0, requests=(30.0,), billing=TRANSCRIBE_STREAMING)
    line = format_usage(usage)
    assert line.startswith("audio 30.0 s, billed 30 s over 1 request, estimated cost 0.0120 USD")
    assert f"at {DEFAULT_RATE_PER_MINUTE:g} USD/min" in line and "an estimate" in line


def test_session_totals_add_up_its_streams() -> None:
    class Fixed:
        def __init__(self, usage: StreamUsage) -> None:
            self.usage = usage

    session = SessionUsage()
    session.add(Fixed(StreamUsage("aws", audio_seconds=5.0, requests=(5.0,), billing=TRANSCRIBE_STREAMING)))
    session.add(Fixed(StreamUsage("local", audio_seconds=7.0, requests=(7.0,))))
    assert session.audio_seconds == 12.0
    assert session.billed_seconds == 15.0
    assert session.to_dict(0.06)["estimated_cost"] == pytest.approx(0.015)
    assert "over 2 requests" in format_usage(session, 0.06)


def test_a_negative_rate_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"rate_per_minute must be >= 0, got -1\.0"):
        cost(60.0, -1.0)

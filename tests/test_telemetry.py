"""Stream telemetry recorded by a real OpenTelemetry SDK (in-memory reader) over real speech."""

from __future__ import annotations

import asyncio
import heapq
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from beluga_voice.audio.chunker import chunk_bytes, iter_chunks
from beluga_voice.audio.reader import read_audio
from beluga_voice.errors import ServiceError, StreamConnectionError
from beluga_voice.stt.model import TranscriptResult
from beluga_voice.telemetry import ALL_METRICS, SessionTelemetry, StreamTelemetry, Telemetry
from beluga_voice.telemetry.metrics import AUDIO_SECONDS, MetricSpec

RATE = 16000
CHUNK_SECONDS = 0.1
FIRST_PARTIAL_DELAY = 0.5  # what the simulated service takes to show an utterance's first words
FINAL_DELAY = 0.8  # what it takes to finalize once speech ends

FAKE_KEY_ID = "ASIAQWERTYUIOPASDFGH"
FAKE_SIGNATURE = "9f2c1d7e4b8a6f3e0d5c2b1a9e8f7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e"
FAKE_TOKEN = "IQoJb3JpZ2luX2VjEJr" + "x7Yz/Q+w" * 40


@dataclass
class OTel:
    telemetry: Telemetry
    reader: InMemoryMetricReader
    spans: InMemorySpanExporter

    def metrics(self) -> dict[str, list[Any]]:
        """Data points by metric name."""
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def total(self, spec: MetricSpec, **attrs: str) -> float:
        points = [p for p in self.metrics().get(spec.name, []) if _matches(p.attributes, attrs)]
        return float(sum(p.value if hasattr(p, "value") else p.sum for p in points))

    def histogram(self, name: str, **attrs: str) -> tuple[int, float]:
        points = [p for p in self.metrics().get(name, []) if _matches(p.attributes, attrs)]
        return sum(p.count for p in points), sum(p.sum for p in points)

    def finished_spans(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())


def _matches(attributes: Any, wanted: dict[str, str]) -> bool:
    return all(attributes.get(k) == v for k, v in wanted.items())


@pytest.fixture
def otel() -> Iterator[OTel]:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    yield OTel(Telemetry(meter_provider, tracer_provider), reader, spans)
    meter_provider.shutdown()
    tracer_provider.shutdown()


@dataclass
class FakeClock:
    """Wall time that a test moves by hand, so that latencies are exact."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    result: TranscriptResult = field(compare=False)


def _reference_segments(data_dir: Path) -> list[tuple[float, float, str]]:
    segments = []
    for line in (data_dir / "pyannote" / "sample.stm").read_text().splitlines():
        parts = line.split(maxsplit=5)
        segments.append((float(parts[3]), float(parts[4]), parts[5]))
    return segments


def _stream_speech(
    tel: StreamTelemetry,
    clock: FakeClock,
    data_dir: Path,
    *,
    fail_at: float | None = None,
    on_failure: Any = None,
) -> int:
    """Send sample.wav in real-time 100 ms chunks; deliver one partial and one final per reference
    segment, FIRST_PARTIAL_DELAY after its start was sent and FINAL_DELAY after its end was sent.
    Returns the number of segments."""
    pcm = read_audio(data_dir / "pyannote" / "sample.wav").convert(RATE, 1).to_pcm16()
    segments = _reference_segments(data_dir)
    queue: list[_Due] = []
    position = 0.0
    seq = 0
    for chunk in iter_chunks(pcm, chunk_bytes(RATE, 100)):
        seconds = len(chunk) / 2 / RATE
        next_send = clock.now + seconds
        while queue and queue[0].at <= next_send:
            due = heapq.heappop(queue)
            clock.now = due.at
            tel.result(due.result)
        clock.now = next_send
        if fail_at is not None and position < fail_at <= position + seconds / 2:
            on_failure()
        before, position = position, position + seconds
        tel.audio_sent(seconds)
        for i, (start, end, text) in enumerate(segments):
            if before < start <= position:
                partial = TranscriptResult(f"seg-{i}", True, start, start + 0.2, text.split()[0])
                heapq.heappush(queue, _Due(clock.now + FIRST_PARTIAL_DELAY, seq := seq + 1, partial))
            if before < end <= position:
                final = TranscriptResult(f"seg-{i}", False, start, end, text)
                heapq.heappush(queue, _Due(clock.now + FINAL_DELAY, seq := seq + 1, final))
    while queue:
        due = heapq.heappop(queue)
        clock.now = due.at
        tel.result(due.result)
    return len(segments)


def test_a_real_speech_stream_records_every_shared_metric(otel: OTel, data_dir: Path) -> None:
    clock = FakeClock()
    tel = StreamTelemetry("aws", "us-east-1", "en-US", telemetry=otel.telemetry, clock=clock)
    presigned = (
        f"wss://transcribestreaming.us-east-1.amazonaws.com:8443/stream-transcription-websocket?"
        f"X-Amz-Credential={FAKE_KEY_ID}%2F20260101%2Fus-east-1%2Ftranscribe%2Faws4_request"
        f"&X-Amz-Security-Token={FAKE_TOKEN}&X-Amz-Signature={FAKE_SIGNATURE}"
    )

    def drop_connection() -> None:
        tel.error(StreamConnectionError(f"connection to {presigned} dropped"))
        clock.now += 0.5
        tel.reconnect(downtime=0.5)
        for _ in range(20):  # 2 s of audio not yet covered by finals, sent again
            tel.audio_replayed(0.1)

    with tel:
        assert otel.total(AUDIO_SECONDS) == 0.0
        segments = _stream_speech(tel, clock, data_dir, fail_at=5.0, on_failure=drop_connection)
        for _ in range(6):  # the application goes quiet: 3 s of keep-alive silence
            tel.keepalive_sent(0.5)

    base = {"provider": "aws", "region": "us-east-1", "language": "en-US", "component": "client"}
    assert otel.total(AUDIO_SECONDS, **base) == pytest.approx(30.0)
    assert otel.total(_spec("beluga.stt.replayed_seconds"), **base) == pytest.approx(2.0)
    assert otel.total(_spec("beluga.stt.keepalive_seconds"), **base) == pytest.approx(3.0)
    # request 1 carried 5 s (billed the 15 s minimum); request 2 carried 2 + 25 + 3 = 30 s
    assert otel.total(_spec("beluga.stt.billed_seconds"), **base) == pytest.approx(45.0)
    assert otel.total(_spec("beluga.stt.reconnects"), **base) == 1
    assert otel.histogram("beluga.stt.reconnect_downtime", **base) == pytest.approx((1, 0.5))
    assert otel.total(_spec("beluga.stt.errors"), **base, **{"error.type": "connection"}) == 1
    assert otel.total(_spec("beluga.stt.active_streams"), **base) == 0
    assert otel.total(_spec("beluga.stt.streams"), **base, outcome="ok") == 1

    count, total = otel.histogram("beluga.stt.first_partial_latency", **base)
    assert count == segments and total / count == pytest.approx(FIRST_PARTIAL_DELAY)
    count, total = otel.histogram("beluga.stt.final_latency", **base)
    assert count == segments and total / count == pytest.approx(FINAL_DELAY)

    usage = tel.usage
    assert usage.requests == pytest.approx((5.0, 30.0))
    assert usage.billed_seconds == 45.0
    assert usage.cost(0.024) == pytest.approx(0.018)

    (span,) = otel.finished_spans()
    assert span.name == "beluga.stt.stream" and span.kind is SpanKind.CLIENT
    assert span.attributes is not None
    assert {k: span.attributes[k] for k in ("provider", "region", "language", "outcome")} == {
        "provider": "aws",
        "region": "us-east-1",
        "language": "en-US",
        "outcome": "ok",
    }
    assert [e.name for e in span.events] == ["exception", "reconnect"]
    message = str(span.events[0].attributes)
    assert "dropped" in message
    for secret in (FAKE_KEY_ID, FAKE_SIGNATURE, FAKE_TOKEN[:40]):
        assert secret not in message


def _spec(name: str) -> MetricSpec:
    return next(s for s in ALL_METRICS if s.name == name)


def test_a_free_local_stream_counts_audio_but_no_billed_seconds(otel: OTel, data_dir: Path) -> None:
    clock = FakeClock()
    with StreamTelemetry("local", None, "en-US", telemetry=otel.telemetry, clock=clock) as tel:
        _stream_speech(tel, clock, data_dir)
    assert otel.total(AUDIO_SECONDS, provider="local") == pytest.approx(30.0)
    assert otel.total(_spec("beluga.stt.billed_seconds")) == 0.0
    assert tel.usage.billed_seconds == 0.0 and tel.usage.cost() == 0.0


def test_audio_is_pushed_in_batches_not_per_chunk(otel: OTel) -> None:
    calls: list[float] = []

    class CountingSink:
        def record(self, spec: MetricSpec, value: float, attributes: Any) -> None:
            if spec is AUDIO_SECONDS:
                calls.append(value)

    otel.telemetry.add_sink(CountingSink())
    with StreamTelemetry("aws", "us-east-1", "en-US", telemetry=otel.telemetry) as tel:
        for _ in range(1000):  # 20 s of 20 ms frames
            tel.audio_sent(0.02)
    assert sum(calls) == pytest.approx(20.0)
    assert len(calls) <= 21  # about one push per second of audio, not 1000


@pytest.mark.parametrize(
    ("raised", "outcome", "error_type"),
    [
        (ServiceError("BadRequestException", "Your stream is too big"), "error", "service"),
        (RuntimeError("boom"), "error", "RuntimeError"),
        (asyncio.CancelledError(), "cancelled", None),
    ],
)
def test_the_outcome_follows_how_the_stream_ended(
    otel: OTel, raised: BaseException, outcome: str, error_type: str | None
) -> None:
    with pytest.raises(type(raised)), StreamTelemetry("aws", "eu-west-1", "de-DE", telemetry=otel.telemetry):
        raise raised
    assert otel.total(_spec("beluga.stt.streams"), outcome=outcome) == 1
    assert otel.total(_spec("beluga.stt.active_streams")) == 0
    errors = otel.metrics().get("beluga.stt.errors", [])
    assert [p.attributes.get("error.type") for p in errors] == ([error_type] if error_type else [])
    (span,) = otel.finished_spans()
    assert span.attributes is not None and span.attributes["outcome"] == outcome
    assert span.status.status_code is (StatusCode.ERROR if outcome == "error" else StatusCode.UNSET)


def test_close_is_idempotent_and_an_error_counted_once(otel: OTel) -> None:
    tel = StreamTelemetry("aws", "us-east-1", "en-US", telemetry=otel.telemetry)
    failure = StreamConnectionError("reset by peer")
    tel.error(failure)
    with pytest.raises(StreamConnectionError), tel:
        raise failure
    tel.close("ok")
    assert tel.outcome == "error"
    assert otel.total(_spec("beluga.stt.errors")) == 1
    assert otel.total(_spec("beluga.stt.streams")) == 1


def test_server_streams_are_a_server_span_with_their_own_component(otel: OTel) -> None:
    with StreamTelemetry("local", "", "en-US", component="server", telemetry=otel.telemetry) as tel:
        tel.audio_sent(1.0)
    assert otel.total(AUDIO_SECONDS, component="server") == 1.0
    assert otel.total(AUDIO_SECONDS, component="client") == 0.0
    (span,) = otel.finished_spans()
    assert span.kind is SpanKind.SERVER


async def test_session_usage_gathers_every_stream_opened_for_it(otel: OTel) -> None:
    session = SessionTelemetry("aws", "us-east-1", "en-US", telemetry=otel.telemetry)

    async def one_stream(seconds: float) -> None:
        with StreamTelemetry("aws", "us-east-1", "en-US", telemetry=otel.telemetry) as tel:
            tel.audio_sent(seconds)

    async def fallback_stream() -> None:
        with StreamTelemetry("local", None, "en-US", telemetry=otel.telemetry) as tel:
            tel.audio_sent(4.0)

    with session.collecting():
        await asyncio.gather(one_stream(20.0), one_stream(3.0), asyncio.create_task(fallback_stream()))
    with StreamTelemetry("aws", "us-east-1", "en-US", telemetry=otel.telemetry) as outside:
        outside.audio_sent(50.0)
    with session.collecting():
        server = StreamTelemetry("local", None, None, component="server", telemetry=otel.telemetry)
        server.close()

    usage = session.usage
    assert sorted(s.audio_seconds for s in usage.streams) == [3.0, 4.0, 20.0]
    assert usage.audio_seconds == 27.0
    assert usage.billed_seconds == 35.0  # 20 s, 3 s billed as 15 s, the local stream free
    assert usage.to_dict(0.03)["estimated_cost"] == pytest.approx(35 / 60 * 0.03)

    session.turn(final_latency=0.7, reply_latency=1.2)
    session.interruption()
    assert otel.total(_spec("beluga.session.turns"), component="session") == 1
    assert otel.histogram("beluga.stt.final_latency", component="session") == pytest.approx((1, 0.7))
    assert otel.histogram("beluga.session.reply_latency", component="session") == pytest.approx((1, 1.2))
    assert otel.total(_spec("beluga.session.interruptions")) == 1


def test_without_an_sdk_nothing_is_recorded_and_an_sdk_installed_later_sees_everything() -> None:
    script = textwrap.dedent(
        """
        from beluga_voice.telemetry import StreamTelemetry
        with StreamTelemetry("aws", "us-east-1", "en-US") as tel:   # no SDK: a no-op
            tel.audio_sent(2.0)

        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        with StreamTelemetry("aws", "us-east-1", "en-US") as tel:
            tel.audio_sent(3.0)
        points = [
            p.value
            for rm in reader.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics if m.name == "beluga.stt.audio_seconds"
            for p in m.data.data_points
        ]
        print(points)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[3.0]"


def test_every_metric_has_a_prometheus_name_in_the_usual_style() -> None:
    names = {spec.name: spec.prometheus_name for spec in ALL_METRICS}
    assert names["beluga.stt.audio_seconds"] == "beluga_stt_audio_seconds"  # + _total as a counter
    assert names["beluga.stt.final_latency"] == "beluga_stt_final_latency_seconds"
    assert names["beluga.stt.active_streams"] == "beluga_stt_active_streams"
    assert len(set(names.values())) == len(names)

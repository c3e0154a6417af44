"""Stream telemetry over a real stream: the AWS provider streams real speech to `beluga serve` on
loopback, and the application records through StreamTelemetry into an in-memory OpenTelemetry SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from beluga_voice.audio.chunker import chunk_bytes, iter_chunks
from beluga_voice.audio.reader import read_audio
from beluga_voice.providers.aws_transcribe import AWSTranscribeSTT
from beluga_voice.server import ServerConfig, echo_engine, serve_in_background
from beluga_voice.stt.model import TranscriptResult
from beluga_voice.telemetry import StreamTelemetry, Telemetry

RATE = 16000


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


async def test_metrics_of_a_real_stream_to_beluga_serve(data_dir: Path) -> None:
    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = Telemetry(MeterProvider(metric_readers=[reader]), tracer_provider)
    pcm = read_audio(data_dir / "pyannote" / "sample.wav").convert(RATE, 1).to_pcm16()
    results: list[TranscriptResult] = []

    async with serve_in_background(ServerConfig(port=0, auth=False, engine=echo_engine)) as server:
        provider = AWSTranscribeSTT(
            region="us-east-1",
            language_code="en-US",
            endpoint_url=server.url,
            credentials=(("AKIA" + "IOSFODNN7EXAMPLE"), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            max_speed=10.0,
        )
        with StreamTelemetry("aws", "us-east-1", "en-US", telemetry=telemetry) as tel:

            async def audio() -> AsyncIterator[bytes]:
                for chunk in iter_chunks(pcm, chunk_bytes(RATE, 100)):
                    tel.audio_sent(len(chunk) / 2 / RATE)
                    yield chunk

            async for result in provider.stream(audio()):
                tel.result(result)
                results.append(result)
        await provider.aclose()

    points = _points(reader)
    (audio_seconds,) = points["beluga.stt.audio_seconds"]
    assert audio_seconds.value == pytest.approx(30.0)
    (billed,) = points["beluga.stt.billed_seconds"]
    assert billed.value == pytest.approx(30.0)  # one request, whole seconds, over the minimum

    segments_with_partials = {r.result_id for r in results if r.is_partial}
    finals_with_text = [r for r in results if not r.is_partial and r.text]
    assert segments_with_partials and finals_with_text
    (first,) = points["beluga.stt.first_partial_latency"]
    (final,) = points["beluga.stt.final_latency"]
    assert first.count == len(segments_with_partials)
    assert final.count == len(finals_with_text)
    # Real wall-clock latencies on loopback: positive, and well under a second on average.
    assert 0 < final.sum / final.count < 1.0
    assert 0 < first.sum / first.count < 2.0

    (span,) = spans.get_finished_spans()
    assert span.attributes is not None and span.attributes["outcome"] == "ok"
    assert span.attributes["audio_seconds"] == pytest.approx(30.0)
    (ended,) = points["beluga.stt.streams"]
    assert ended.attributes["outcome"] == "ok"

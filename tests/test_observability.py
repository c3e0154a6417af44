"""/healthz and /metrics scraped over a real loopback socket, parsed with prometheus_client's parser."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import pytest

from beluga_voice.errors import ConfigurationError, ServiceError
from beluga_voice.server.observability import ObservabilityServer
from beluga_voice.telemetry import StreamTelemetry, Telemetry
from metrics_kit import get as _get
from metrics_kit import http as _http
from metrics_kit import samples as _samples
from metrics_kit import value as _value

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKE"


@pytest.fixture
async def telemetry() -> Telemetry:
    return Telemetry()  # OpenTelemetry API only: the Prometheus bridge is the one sink that records


@pytest.fixture
async def obs(telemetry: Telemetry) -> AsyncIterator[ObservabilityServer]:
    async with ObservabilityServer("127.0.0.1", 0, telemetry=telemetry) as server:
        yield server


SERVER = {"component": "server", "provider": "local", "region": "", "language": "en-US"}


async def test_metrics_expose_the_shared_names_of_served_streams(
    obs: ObservabilityServer, telemetry: Telemetry
) -> None:
    with StreamTelemetry("local", None, "en-US", component="server", telemetry=telemetry) as done:
        for _ in range(25):
            done.audio_sent(0.1)
        done.final(0.4)
    with (
        pytest.raises(ServiceError),
        StreamTelemetry("local", None, "en-US", component="server", telemetry=telemetry),
    ):
        raise ServiceError("BadRequestException", f"Your stream is too big (key {SECRET})")
    live = StreamTelemetry("local", None, "en-US", component="server", telemetry=telemetry)
    live.audio_sent(1.0)  # a full batch: pushed at once
    live.audio_sent(0.5)  # below the batch size: pushed later

    status, headers, body = await _get(obs.port, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()
    samples = _samples(text)
    assert _value(samples, "beluga_stt_audio_seconds_total", **SERVER) == pytest.approx(3.5)
    assert _value(samples, "beluga_stt_active_streams", **SERVER) == 1
    assert _value(samples, "beluga_stt_streams_total", **SERVER, outcome="ok") == 1
    assert _value(samples, "beluga_stt_streams_total", **SERVER, outcome="error") == 1
    assert _value(samples, "beluga_stt_errors_total", **SERVER, error_type="service") == 1
    assert _value(samples, "beluga_stt_final_latency_seconds_count", **SERVER) == 1
    assert _value(samples, "beluga_stt_final_latency_seconds_bucket", **SERVER, le="0.5") == 1
    assert _value(samples, "beluga_stt_billed_seconds_total") == 0  # the local engine bills nothing
    assert "process_resident_memory_bytes" in text
    assert SECRET not in text

    status, headers, body = await _get(obs.port, "/healthz")
    health = json.loads(body)
    assert status == 200 and headers["content-type"] == "application/json"
    assert health["status"] == "ok" and health["active_streams"] == 1 and health["uptime_seconds"] >= 0

    live.close()
    samples = _samples((await _get(obs.port, "/metrics"))[2].decode())
    assert _value(samples, "beluga_stt_active_streams", **SERVER) == 0
    assert _value(samples, "beluga_stt_audio_seconds_total", **SERVER) == pytest.approx(4.0)
    assert json.loads((await _get(obs.port, "/healthz"))[2])["active_streams"] == 0


async def test_openmetrics_is_served_to_scrapers_that_ask_for_it(obs: ObservabilityServer) -> None:
    request = (
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n"
    )
    status, headers, body = await _http(obs.port, request)
    assert status == 200 and headers["content-type"].startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


async def test_health_reports_draining_as_unavailable(telemetry: Telemetry) -> None:
    state = {"status": "ok"}
    async with ObservabilityServer("127.0.0.1", 0, telemetry=telemetry, health=lambda: state) as obs:
        assert (await _get(obs.port, "/healthz"))[0] == 200
        state["status"] = "draining"
        status, _, body = await _get(obs.port, "/healthz")
        assert status == 503 and json.loads(body)["status"] == "draining"


async def test_a_failing_health_source_answers_500_and_keeps_serving(telemetry: Telemetry) -> None:
    def broken() -> dict[str, str]:
        raise RuntimeError("health source crashed")

    async with ObservabilityServer("127.0.0.1", 0, telemetry=telemetry, health=broken) as obs:
        assert (await _get(obs.port, "/healthz"))[0] == 500
        assert (await _get(obs.port, "/metrics"))[0] == 200


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /nope HTTP/1.1\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"garbage\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\n", 431),
    ],
)
async def test_bad_requests_get_a_clear_status(
    obs: ObservabilityServer, request_bytes: bytes, status: int
) -> None:
    assert (await _http(obs.port, request_bytes))[0] == status


async def test_head_gives_headers_without_a_body(obs: ObservabilityServer) -> None:
    status, headers, body = await _get(obs.port, "/healthz", method="HEAD")
    assert status == 200 and int(headers["content-length"]) > 0 and body == b""


async def test_after_close_the_port_is_free_and_streams_no_longer_reach_the_registry(
    telemetry: Telemetry,
) -> None:
    obs = ObservabilityServer("127.0.0.1", 0, telemetry=telemetry)
    await obs.start()
    port = obs.port
    await obs.close()
    with StreamTelemetry("local", None, "en-US", component="server", telemetry=telemetry) as tel:
        tel.audio_sent(5.0)
    assert obs.bridge.active_streams() == 0
    with pytest.raises(OSError):
        await _get(port, "/healthz")


async def test_a_busy_port_is_a_clear_configuration_error(telemetry: Telemetry) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match=rf"127\.0\.0\.1:{port}.*--metrics-port"):
            await ObservabilityServer("127.0.0.1", port, telemetry=telemetry).start()

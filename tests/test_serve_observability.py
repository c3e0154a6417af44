"""`beluga serve` as an operator watches it: /metrics after real streams, /healthz through a drain, JSON logs.

Streams are real speech over real loopback sockets (the echo engine stands in for the model: the
protocol path is what is measured here); /metrics is parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from beluga_voice.audio import read_audio
from beluga_voice.cli.main import build_parser
from beluga_voice.cli.serve import config_from_args
from beluga_voice.errors import ConfigurationError
from beluga_voice.providers.aws_transcribe.messages import audio_event, end_of_stream
from beluga_voice.server import Credential, ServerConfig, echo_engine, serve_in_background
from beluga_voice.server.testing import open_stream, presigned_url, read_reply
from metrics_kit import get, scrape, value

PARAMS = "?language-code=en-US&media-encoding=pcm&sample-rate=16000"
CHUNK = 3200  # 100 ms at 16 kHz
KEY_ID = "AKIA" + "IOSFODNN7BELUGA01"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYBELUGAKEY1"
TOKEN = "FwoGZXIvYXdzEJr//////////wEaDBELUGATOKENforOperationsTestsOnly=="
CREDENTIAL = Credential(KEY_ID, SECRET, TOKEN)
SERVER = {"component": "server", "provider": "echo", "region": "us-east-1", "language": "en-US"}


@pytest.fixture(scope="module")
def speech(data_dir: Path) -> bytes:
    """A reader's sentence (2.99 s), 16 kHz mono s16le."""
    audio = read_audio(data_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0880.wav")
    return audio.convert(16000, 1).to_pcm16()


def serve_args(*flags: str) -> ServerConfig:
    """The config `beluga serve FLAGS` runs with."""
    return config_from_args(build_parser().parse_args(["serve", *flags]))


async def stream(url: str, pcm: bytes, *, end: bool = True) -> int:
    """Send ``pcm`` in 100 ms AudioEvents (20x real time); the number of finals received."""
    async with open_stream(url) as ws:
        for offset in range(0, len(pcm), CHUNK):
            await ws.send(audio_event(pcm[offset : offset + CHUNK]))
            await asyncio.sleep(0.005)
        if end:
            await ws.send(end_of_stream())
        reply = await read_reply(ws)
    assert reply.exception is None, reply.exception
    return len(reply.finals)


async def test_metrics_count_the_audio_and_streams_that_were_served(speech: bytes) -> None:
    config = serve_args("--no-auth", "--engine", "echo", "--port", "0", "--metrics-port", "0")
    assert config.metrics_port == 0 and config.metrics_host == "127.0.0.1"
    async with serve_in_background(config) as server:
        assert server.observability is not None and server.metrics_url is not None
        port = server.observability.port
        before = await scrape(port)
        assert value(before, "beluga_stt_streams_total") == 0

        finals = await stream(server.url + PARAMS, speech)
        finals += await stream(server.url + PARAMS, speech[: 10 * CHUNK])
        async with open_stream(server.url + "?language-code=en-US&media-encoding=pcm&sample-rate=100") as ws:
            refused = await read_reply(ws)
        assert refused.exception is not None and "sample" in refused.exception.message.lower()

        found = await scrape(port)
    assert finals >= 2
    sent_seconds = (len(speech) + 10 * CHUNK) / 32000
    assert value(found, "beluga_stt_audio_seconds_total", **SERVER) == pytest.approx(sent_seconds)
    assert value(found, "beluga_stt_streams_total", **SERVER, outcome="ok") == 2
    assert value(found, "beluga_stt_streams_total", component="server", outcome="error") == 1
    # the client meets a ConfigurationError for that refusal: the server counts the same type
    assert value(found, "beluga_stt_errors_total", component="server", error_type="configuration") == 1
    assert value(found, "beluga_stt_active_streams", component="server") == 0
    # every final the clients received was timed from the moment its audio arrived
    assert value(found, "beluga_stt_final_latency_seconds_count", **SERVER) == finals
    assert value(found, "beluga_stt_first_partial_latency_seconds_count", **SERVER) >= finals
    assert value(found, "beluga_stt_billed_seconds_total") == 0  # a local server bills nothing
    assert value(found, "beluga_stt_errors_total", component="server", error_type="timeout") == 0


async def test_healthz_turns_503_while_draining_and_open_streams_still_finish(speech: bytes) -> None:
    config = ServerConfig(port=0, auth=False, engine=echo_engine, metrics_port=0, drain_timeout=20)
    async with serve_in_background(config) as server:
        assert server.observability is not None
        port = server.observability.port
        async with open_stream(server.url + PARAMS) as ws:
            for offset in range(0, 10 * CHUNK, CHUNK):
                await ws.send(audio_event(speech[offset : offset + CHUNK]))
            status, _, body = await get(port, "/healthz")
            health = json.loads(body)
            assert status == 200 and health["status"] == "ok"
            assert health["active_streams"] == 1 and health["max_streams"] == config.max_streams

            drain = asyncio.create_task(server.drain())
            await asyncio.sleep(0.2)
            status, _, body = await get(port, "/healthz")
            assert status == 503 and json.loads(body)["status"] == "draining"
            assert (await get(port, "/metrics"))[0] == 200  # still scrapeable during the drain

            for offset in range(10 * CHUNK, len(speech), CHUNK):
                await ws.send(audio_event(speech[offset : offset + CHUNK]))
            await ws.send(end_of_stream())
            reply = await read_reply(ws)
        assert reply.exception is None and reply.finals, "the open stream ends normally"
        await asyncio.wait_for(drain, 20)
        with pytest.raises(OSError):  # the drain is over: the health port is closed too
            await get(port, "/healthz")


def test_the_metrics_port_cannot_be_the_streaming_port() -> None:
    with pytest.raises(ConfigurationError, match="--metrics-port"):
        ServerConfig(port=8443, auth=False, metrics_port=8443)


async def test_beluga_serve_logs_json_without_secrets_and_answers_health_until_it_exits(
    speech: bytes,
) -> None:
    """The real command: signed streams, JSON logs on stderr, /healthz 503 after SIGTERM."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": TOKEN,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from beluga_voice.cli.main import main; sys.exit(main(sys.argv[1:]))",
        "serve", "--engine", "echo", "--port", "0", "--metrics-port", "0", "--log-json", "--drain-timeout", "20",
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []

    async def next_record() -> dict[str, object]:
        assert process.stderr is not None
        line = (await asyncio.wait_for(process.stderr.readline(), 60)).decode()
        assert line, "beluga serve exited early:\n" + "".join(lines)
        lines.append(line)
        record: dict[str, object] = json.loads(line)  # every line is one JSON object
        return record

    url = metrics = None
    while url is None or metrics is None:
        message = str((await next_record())["message"])
        if found := re.search(r"listening on (ws://\S+)", message):
            url = found.group(1)
        if found := re.search(r"health and metrics on (http://\S+)", message):
            metrics = found.group(1)
    metrics_port = int(metrics.rsplit(":", 1)[1])
    try:
        signed = presigned_url(url, dict(p.split("=") for p in PARAMS[1:].split("&")), CREDENTIAL)
        signature = signed.split("X-Amz-Signature=")[1].split("&")[0]
        wrong = presigned_url(url, {"language-code": "en-US"}, Credential(KEY_ID, "not-the-secret", TOKEN))
        async with open_stream(wrong) as ws:
            assert (await read_reply(ws)).exception is not None
        async with open_stream(signed) as ws:
            for offset in range(0, 10 * CHUNK, CHUNK):
                await ws.send(audio_event(speech[offset : offset + CHUNK]))
            assert (await get(metrics_port, "/healthz"))[0] == 200
            process.send_signal(signal.SIGTERM)
            for _ in range(50):
                status, _, body = await get(metrics_port, "/healthz")
                if status == 503:
                    break
                await asyncio.sleep(0.1)
            assert status == 503 and json.loads(body)["status"] == "draining"
            await ws.send(end_of_stream())
            reply = await read_reply(ws)
        assert reply.exception is None and reply.finals
        assert await asyncio.wait_for(process.wait(), 30) == 0
        remaining = await process.stderr.read()
        lines += remaining.decode().splitlines(keepends=True)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    records = [json.loads(line) for line in lines]
    streams = [r for r in records if str(r["message"]).startswith("stream ")]
    assert [r["error_type"] for r in streams] == ["credentials", None]  # the wrong secret, then ok
    served = streams[1]
    assert served["outcome"] == "completed" and served["audio_seconds"] == pytest.approx(1.0)
    assert served["access_key"] == "..." + KEY_ID[-4:] and served["level"] == "info"
    everything = "".join(lines)
    for secret in (SECRET, TOKEN, signature, KEY_ID):
        assert secret not in everything

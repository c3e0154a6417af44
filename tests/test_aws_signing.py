"""Presigned URLs, credential sources and endpoints: what signing must get right, checked with botocore."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import botocore.session
import pytest
from botocore.credentials import Credentials

from beluga_voice.errors import ConfigurationError, CredentialsError, UnsupportedRegionError
from beluga_voice.providers.aws_transcribe import AWSTranscribeSTT, TranscribeConfig
from beluga_voice.providers.aws_transcribe.redaction import redact_url
from beluga_voice.providers.aws_transcribe.regions import resolve_endpoint, streaming_regions
from beluga_voice.providers.aws_transcribe.signing import (
    ChainCredentials,
    SessionCredentials,
    StaticCredentials,
    credential_source,
    endpoint_from_url,
    presign_url,
)
from test_aws_fakes import ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, expected_signature

FROZEN = Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN).get_frozen_credentials()


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


@pytest.fixture
def isolated_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credentials anywhere: empty config files, no env keys, no instance or container roles."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("BOTO_CONFIG", str(tmp_path / "boto"))
    return tmp_path


def test_the_presigned_url_is_the_one_the_protocol_describes() -> None:
    config = TranscribeConfig(
        identify_language=True,
        language_options=("en-US", "de-DE"),
        vocabulary_names=("tech-en", "tech-de"),
        session_id="0f8fad5b-d9cb-469f-a165-70867728950e",
    )
    url = presign_url(resolve_endpoint("eu-west-1"), config.to_query_params(), FROZEN)
    parts = urlsplit(url)
    query = _query(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "wss",
        "transcribestreaming.eu-west-1.amazonaws.com:8443",
        "/stream-transcription-websocket",
    )
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Credential"].endswith("/eu-west-1/transcribe/aws4_request")
    assert query["X-Amz-Credential"].startswith(ACCESS_KEY + "/")
    assert query["X-Amz-SignedHeaders"] == "host"
    assert int(query["X-Amz-Expires"]) <= 300
    assert query["X-Amz-Security-Token"] == SESSION_TOKEN
    for name, value in config.to_query_params().items():
        assert query[name] == value
    assert "language-options=en-US%2Cde-DE" in url  # commas percent-encoded as the canonical form wants
    assert query["X-Amz-Signature"] == expected_signature(url, SECRET_KEY)


def test_every_signed_part_is_covered_by_the_signature() -> None:
    url = presign_url(resolve_endpoint("us-east-1"), TranscribeConfig().to_query_params(), FROZEN)
    signature = _query(url)["X-Amz-Signature"]
    tampered = [
        url.replace(SESSION_TOKEN.replace("/", "%2F").replace("=", "%3D").replace("+", "%2B"), "OTHER"),
        url.replace("sample-rate=16000", "sample-rate=8000"),
        url.replace(":8443", ""),
        url.replace("/stream-transcription-websocket", "/other"),
    ]
    for changed in tampered:
        assert changed != url
        assert expected_signature(changed, SECRET_KEY) != signature


def test_signing_without_a_session_token_omits_it() -> None:
    plain = Credentials(ACCESS_KEY, SECRET_KEY).get_frozen_credentials()
    url = presign_url(resolve_endpoint("us-west-2"), {"language-code": "en-US"}, plain)
    assert "X-Amz-Security-Token" not in _query(url)
    assert _query(url)["X-Amz-Signature"] == expected_signature(url, SECRET_KEY)


@pytest.mark.parametrize("expires", [0, 301, 3600])
def test_url_lifetimes_over_the_service_limit_are_refused(expires: int) -> None:
    with pytest.raises(ConfigurationError, match="300"):
        presign_url(resolve_endpoint("us-east-1"), {}, FROZEN, expires=expires)


def test_china_and_fips_hosts_come_from_botocores_data() -> None:
    regions = streaming_regions()
    assert {"us-east-1", "eu-west-1", "cn-north-1"} <= set(regions)
    assert not any(r.startswith("fips-") for r in regions)
    assert resolve_endpoint("cn-north-1").host == "transcribestreaming.cn-north-1.amazonaws.com.cn"
    assert resolve_endpoint("us-east-1", fips=True).host == "transcribestreaming-fips.us-east-1.amazonaws.com"
    with pytest.raises(UnsupportedRegionError, match=r"FIPS regions: .*us-east-1"):
        resolve_endpoint("eu-west-1", fips=True)
    with pytest.raises(UnsupportedRegionError, match="Did you mean 'us-east-2'"):
        resolve_endpoint("us-east-7")


def test_no_credentials_names_every_source_tried_and_the_fix(isolated_aws: Path) -> None:
    with pytest.raises(CredentialsError) as caught:
        ChainCredentials().resolve()
    message = str(caught.value)
    for fragment in (
        "AWS_ACCESS_KEY_ID",
        "~/.aws/credentials",
        "SSO",
        "instance role",
        "container role",
        "aws configure",
        "IAM role",
        "transcribe:StartStreamTranscriptionWebSocket",
    ):
        assert fragment in message, fragment


def test_an_unknown_profile_is_named(isolated_aws: Path) -> None:
    with pytest.raises(CredentialsError, match=r"'nope'.*aws configure"):
        ChainCredentials(profile="nope").resolve()


def test_profiles_from_the_shared_files_are_used(isolated_aws: Path) -> None:
    (isolated_aws / "credentials").write_text(
        f"[dev]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )
    credentials = ChainCredentials(profile="dev").resolve()
    assert (credentials.access_key, credentials.secret_key) == (ACCESS_KEY, SECRET_KEY)


def test_a_botocore_session_is_accepted_and_gives_the_region(isolated_aws: Path) -> None:
    session = botocore.session.Session()
    session.set_credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
    session.set_config_variable("region", "eu-central-1")
    provider = AWSTranscribeSTT.from_session(session)
    assert provider.config.region == "eu-central-1"
    assert provider.endpoint.host == "transcribestreaming.eu-central-1.amazonaws.com"
    assert SessionCredentials(session).resolve().token == SESSION_TOKEN


def test_credential_inputs_and_their_reprs_hide_secrets() -> None:
    sources = [
        credential_source((ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)),
        credential_source(Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)),
        credential_source(FROZEN),
        StaticCredentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN),
    ]
    for source in sources:
        assert source.resolve().secret_key == SECRET_KEY
        shown = repr(source)
        assert SECRET_KEY not in shown and SESSION_TOKEN not in shown and ACCESS_KEY not in shown
    provider = AWSTranscribeSTT(credentials=(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN))
    assert SECRET_KEY not in repr(provider) and SESSION_TOKEN not in repr(provider)
    with pytest.raises(ConfigurationError):
        credential_source((ACCESS_KEY, SECRET_KEY), session=botocore.session.Session())


def test_urls_are_redacted_for_logs() -> None:
    url = presign_url(resolve_endpoint("us-east-1"), {}, FROZEN)
    shown = redact_url(url)
    for secret in (SESSION_TOKEN, _query(url)["X-Amz-Signature"], ACCESS_KEY):
        assert secret not in shown
    assert "transcribestreaming.us-east-1.amazonaws.com:8443" in shown


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765/stream-transcription-websocket"),
        ("ws://localhost:8765/", "ws://localhost:8765/stream-transcription-websocket"),
        ("ws://[::1]:9000", "ws://[::1]:9000/stream-transcription-websocket"),
        ("http://127.0.0.1:80/custom", "ws://127.0.0.1/custom"),
        ("https://proxy.example.com", "wss://proxy.example.com/stream-transcription-websocket"),
        ("wss://transcribe.internal:8443", "wss://transcribe.internal:8443/stream-transcription-websocket"),
    ],
)
def test_endpoint_overrides(url: str, expected: str) -> None:
    assert endpoint_from_url(url, "us-east-1").url == expected


def test_plain_websockets_to_other_hosts_need_an_explicit_opt_in() -> None:
    with pytest.raises(ConfigurationError, match=r"clear text.*allow_insecure=True"):
        endpoint_from_url("ws://10.0.0.5:8765", "us-east-1")
    assert endpoint_from_url("ws://10.0.0.5:8765", "us-east-1", allow_insecure=True).host == "10.0.0.5"
    with pytest.raises(ConfigurationError):
        endpoint_from_url("ftp://example.com", "us-east-1")
    with pytest.raises(ConfigurationError, match="query"):
        endpoint_from_url("wss://example.com/?X-Amz-Signature=abc", "us-east-1")


def test_the_environment_endpoint_is_read_and_can_be_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING", "ws://127.0.0.1:9999")
    provider = AWSTranscribeSTT(credentials=(ACCESS_KEY, SECRET_KEY))
    assert provider.endpoint.url == "ws://127.0.0.1:9999/stream-transcription-websocket"
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert AWSTranscribeSTT(credentials=(ACCESS_KEY, SECRET_KEY)).endpoint.port == 8443


def test_region_defaults_follow_botocore_conventions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert AWSTranscribeSTT(credentials=(ACCESS_KEY, SECRET_KEY)).config.region == "us-east-1"
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    assert AWSTranscribeSTT(credentials=(ACCESS_KEY, SECRET_KEY)).config.region == "ap-southeast-2"
    assert (
        AWSTranscribeSTT(region="sa-east-1", credentials=(ACCESS_KEY, SECRET_KEY)).config.region
        == "sa-east-1"
    )


def test_unknown_provider_options_are_refused_with_the_valid_list() -> None:
    with pytest.raises(ConfigurationError, match=r"speaker_labels.*show_speaker_label"):
        AWSTranscribeSTT(speaker_labels=True, credentials=(ACCESS_KEY, SECRET_KEY))

"""Credential sources of the server and the SigV4 URL check, without a socket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from websockets.datastructures import Headers

from beluga_voice.errors import CredentialsError
from beluga_voice.server.auth import AuthFailure, Credential, CredentialStore, verify_presigned_url
from beluga_voice.server.handshake import normalize_headers
from beluga_voice.server.testing import presigned_url

KEY = Credential("AKIDEXAMPLEAUTH00001", "secret/value/that/must/never/leak/0000")


def test_credentials_file_with_several_profiles_and_a_session_token(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(
        "[default]\naws_access_key_id = AKIDONE\naws_secret_access_key = one-secret\n\n"
        "[temp]\naws_access_key_id = ASIATWO\naws_secret_access_key = two-secret\naws_session_token = tok\n"
    )
    store = CredentialStore.from_file(path)
    assert len(store) == 2
    temporary = store.lookup("ASIATWO")
    assert temporary is not None and temporary.session_token == "tok"
    for shown in (repr(store), repr(temporary), str(temporary)):
        assert "two-secret" not in shown and "tok" not in shown and "ASIATWO" not in shown


def test_credentials_file_problems_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(CredentialsError, match="nope"):
        CredentialStore.from_file(missing)
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(CredentialsError, match="no profile"):
        CredentialStore.from_file(empty)


def test_environment_credentials() -> None:
    store = CredentialStore.from_env(
        {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"}
    )
    credential = store.lookup("AKIDENV")
    assert credential is not None and credential.session_token == "t"
    assert not len(CredentialStore.from_env({}))


def check(url: str, now: datetime, store: CredentialStore | None = None, region: str | None = None) -> None:
    parts = urlsplit(url)
    verify_presigned_url(
        parse_qsl(parts.query, keep_blank_values=True),
        host=parts.netloc,
        path=f"{parts.path}?{parts.query}",
        store=store or CredentialStore([KEY]),
        now=now,
        region=region,
    )


def test_botocore_signed_urls_verify_including_commas_spaces_and_hash() -> None:
    params = {
        "language-code": "en-US",
        "media-encoding": "pcm",
        "sample-rate": "16000",
        "vocabulary-names": "a,b",
        "x-amz-user-agent": "aws-sdk-js/3.0 ua/2.1 os/other#1 lang/js",
    }
    url = presigned_url("ws://127.0.0.1:8443", params, KEY, region="eu-west-1", expires=60)
    check(url, datetime.now(UTC))
    check(url, datetime.now(UTC), region="eu-west-1")
    with pytest.raises(AuthFailure, match="region"):
        check(url, datetime.now(UTC), region="us-east-1")
    with pytest.raises(AuthFailure, match="Signature expired"):
        check(url, datetime.now(UTC) + timedelta(seconds=61))


def test_the_signed_host_includes_the_port() -> None:
    url = presigned_url("ws://127.0.0.1:8443", {"sample-rate": "16000"}, KEY)
    with pytest.raises(AuthFailure, match="does not match"):
        check(url.replace(":8443", ":9443"), datetime.now(UTC))


def test_repeated_handshake_headers_keep_the_first_usable_value() -> None:
    headers = Headers()
    headers["Sec-WebSocket-Key"] = "not base64!"
    headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
    headers["Sec-WebSocket-Version"] = "13"
    headers["Sec-WebSocket-Version"] = "13"
    headers["Origin"] = "https://a.example"
    headers["Origin"] = "https://b.example"
    normalize_headers(headers)
    assert headers.get_all("Sec-WebSocket-Key") == ["dGhlIHNhbXBsZSBub25jZQ=="]
    assert headers.get_all("Sec-WebSocket-Version") == ["13"]
    assert headers.get_all("Origin") == ["https://a.example"]

"""SigV4 verification of presigned stream URLs and of per-frame signatures, as the service does it.

The URL signature is recomputed with botocore's own SigV4 query signer, fed the request's timestamp
and parameters, so the server agrees with every client that signs the way botocore does.
"""

from __future__ import annotations

import configparser
import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from beluga_voice.errors import CredentialsError
from beluga_voice.providers.aws_transcribe.eventstream import Header, HeaderType, encode_headers

SERVICE = "transcribe"
ALGORITHM = "AWS4-HMAC-SHA256"
EVENT_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
MAX_EXPIRES = 300
CLOCK_SKEW = timedelta(minutes=5)
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
AUTH_PARAMS = frozenset(
    {
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
    }
)
INVALID_TOKEN = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def mask_key(access_key_id: str) -> str:
    """An access key id shortened so logs can tell keys apart without disclosing them."""
    return f"...{access_key_id[-4:]}" if len(access_key_id) > 4 else "..."


@dataclass(frozen=True)
class Credential:
    """One key pair the server accepts; temporary credentials carry their session token."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        kind = "temporary" if self.session_token else "long-term"
        return f"Credential({mask_key(self.access_key_id)}, {kind})"


class CredentialStore:
    """The key pairs a server verifies signatures against, looked up by access key id."""

    def __init__(self, credentials: Iterable[Credential] = ()) -> None:
        self._by_key: dict[str, Credential] = {}
        for credential in credentials:
            if not credential.access_key_id or not credential.secret_access_key:
                raise CredentialsError("a credential needs both an access key id and a secret access key")
            self._by_key[credential.access_key_id] = credential

    def __len__(self) -> int:
        return len(self._by_key)

    def __repr__(self) -> str:
        return f"CredentialStore({len(self)} key pair(s))"

    def lookup(self, access_key_id: str) -> Credential | None:
        return self._by_key.get(access_key_id)

    def merged(self, other: CredentialStore) -> CredentialStore:
        return CredentialStore([*self._by_key.values(), *other._by_key.values()])

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CredentialStore:
        """The AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN pair, if set."""
        env = os.environ if environ is None else environ
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if not key or not secret:
            return cls()
        return cls([Credential(key, secret, env.get("AWS_SESSION_TOKEN") or None)])

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> CredentialStore:
        """Every profile of a file in the ``~/.aws/credentials`` format (one key pair per section)."""
        source = Path(path)
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with source.open(encoding="utf-8") as handle:
                parser.read_file(handle)
        except (OSError, configparser.Error) as exc:
            raise CredentialsError(f"cannot read credentials file {source}: {exc}") from None
        credentials: list[Credential] = []
        for section in parser.sections():
            values = parser[section]
            key, secret = values.get("aws_access_key_id"), values.get("aws_secret_access_key")
            if not key or not secret:
                raise CredentialsError(
                    f"credentials file {source}: profile [{section}] needs aws_access_key_id and "
                    "aws_secret_access_key"
                )
            credentials.append(Credential(key.strip(), secret.strip(), values.get("aws_session_token")))
        if not credentials:
            raise CredentialsError(f"credentials file {source} holds no profile with a key pair")
        return cls(credentials)


@dataclass(frozen=True)
class AuthFailure(Exception):
    """A refused signature, named and worded as the service answers it."""

    exception_name: str
    message: str
    http_status: int = 403

    def __str__(self) -> str:
        return f"{self.exception_name}: {self.message}"


@dataclass(frozen=True)
class SigningContext:
    """What a verified URL leaves for checking the per-frame signature chain."""

    access_key_id: str
    region: str
    seed_signature: str = field(repr=False)
    secret_access_key: str = field(repr=False)


def _bad_request(message: str) -> AuthFailure:
    return AuthFailure("BadRequestException", message, 403)


def _parse_amz_date(value: str) -> datetime:
    try:
        return datetime.strptime(value, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise _bad_request(
            f"X-Amz-Date '{value}' is not a valid timestamp (expected the form 20240101T120000Z)."
        ) from None


def verify_presigned_url(
    query: Sequence[tuple[str, str]],
    *,
    host: str,
    path: str,
    store: CredentialStore,
    now: datetime,
    region: str | None = None,
    max_expires: int = MAX_EXPIRES,
) -> SigningContext:
    """Check a presigned GET: credential, scope, date window, expiry, and the signature itself.

    ``query`` holds the decoded parameters in request order; ``host`` is the Host header as sent
    (the port is part of what clients sign).
    """
    params = dict(query)
    missing = [
        name
        for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Signature")
        if not params.get(name)
    ]
    if missing:
        raise AuthFailure(
            "MissingAuthenticationTokenException",
            f"Missing Authentication Token: the request has no {', '.join(missing)} query parameter.",
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise _bad_request(f"X-Amz-Algorithm must be {ALGORITHM}.")
    scope_parts = params["X-Amz-Credential"].split("/")
    if len(scope_parts) != 5 or scope_parts[4] != "aws4_request":
        raise _bad_request(
            "X-Amz-Credential must be <access key id>/<YYYYMMDD>/<region>/transcribe/aws4_request."
        )
    access_key_id, scope_date, scope_region, scope_service, _ = scope_parts
    timestamp = params["X-Amz-Date"]
    signed_at = _parse_amz_date(timestamp)
    if scope_date != timestamp[:8]:
        raise _bad_request(f"Credential scope date {scope_date} does not match X-Amz-Date {timestamp}.")
    if scope_service != SERVICE:
        raise _bad_request(f"Credential should be scoped to correct service: '{SERVICE}'.")
    if region is not None and scope_region != region:
        raise _bad_request(f"Credential should be scoped to a valid region, not '{scope_region}'.")
    try:
        expires = int(params.get("X-Amz-Expires", str(max_expires)))
    except ValueError:
        raise _bad_request("X-Amz-Expires must be a whole number of seconds.") from None
    if not 1 <= expires <= max_expires:
        raise _bad_request(f"X-Amz-Expires must be between 1 and {max_expires} seconds, not {expires}.")
    if now < signed_at - CLOCK_SKEW:
        raise _bad_request(
            f"Signature not yet current: {timestamp} is still later than "
            f"{(now + CLOCK_SKEW).strftime(AMZ_DATE_FORMAT)} ({now.strftime(AMZ_DATE_FORMAT)} + 5 min.)"
        )
    if now > signed_at + timedelta(seconds=expires):
        raise _bad_request(
            f"Signature expired: {timestamp} is now earlier than "
            f"{(now - timedelta(seconds=expires)).strftime(AMZ_DATE_FORMAT)} "
            f"({now.strftime(AMZ_DATE_FORMAT)} - {expires} sec.)"
        )
    credential = store.lookup(access_key_id)
    token = params.get("X-Amz-Security-Token")
    if credential is None or (credential.session_token or None) != (token or None):
        raise AuthFailure("UnrecognizedClientException", INVALID_TOKEN)
    expected = _url_signature(credential, scope_region, timestamp, expires, query, host, path, params)
    if not hmac.compare_digest(expected, params["X-Amz-Signature"].lower()):
        raise _bad_request(SIGNATURE_MISMATCH)
    return SigningContext(access_key_id, scope_region, expected, credential.secret_access_key)


def _url_signature(
    credential: Credential,
    region: str,
    timestamp: str,
    expires: int,
    query: Sequence[tuple[str, str]],
    host: str,
    path: str,
    params: Mapping[str, str],
) -> str:
    signer = SigV4QueryAuth(
        Credentials(credential.access_key_id, credential.secret_access_key, credential.session_token),
        SERVICE,
        region,
        expires=expires,
    )
    request = AWSRequest(
        method="GET",
        url=f"https://{host}{urlsplit(path).path}",
        params={name: value for name, value in query if name != "X-Amz-Signature"},
    )
    request.context["timestamp"] = timestamp
    # Sign exactly the headers the client says it signed; the service requires at least host.
    for name in params.get("X-Amz-SignedHeaders", "host").split(";"):
        if name == "host":
            request.headers["host"] = host
    canonical = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical), request)


def signing_key(secret_access_key: str, day: str, region: str) -> bytes:
    """The SigV4 key for one day, region and this service."""
    key = hmac.new(f"AWS4{secret_access_key}".encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class FrameSignatureChain:
    """Verifies ``:chunk-signature`` envelopes: each signature covers the previous one."""

    def __init__(self, context: SigningContext) -> None:
        self._context = context
        self._prior = context.seed_signature
        self._keys: dict[str, bytes] = {}

    def verify(self, date: datetime, signature: bytes, payload: bytes) -> None:
        day = date.strftime("%Y%m%d")
        key = self._keys.get(day)
        if key is None:
            key = self._keys[day] = signing_key(self._context.secret_access_key, day, self._context.region)
        date_header = encode_headers({":date": Header(HeaderType.TIMESTAMP, date)})
        string_to_sign = "\n".join(
            (
                EVENT_ALGORITHM,
                date.strftime(AMZ_DATE_FORMAT),
                f"{day}/{self._context.region}/{SERVICE}/aws4_request",
                self._prior,
                hashlib.sha256(date_header).hexdigest(),
                hashlib.sha256(payload).hexdigest(),
            )
        )
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise _bad_request(
                "The event signature we calculated does not match the :chunk-signature you provided."
            )
        self._prior = expected.hex()

"""Credentials and the presigned WebSocket URL.

Credentials come from botocore's chain (or a session / explicit keys the caller passes) and are
resolved again for every connection, so expiring role and SSO credentials never end a long stream.
The URL is signed by botocore's own SigV4 query signer: no hand-written canonicalisation.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import botocore.session
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from beluga_voice.errors import ConfigurationError, CredentialsError
from beluga_voice.providers.aws_transcribe.messages import IAM_ACTION
from beluga_voice.providers.aws_transcribe.redaction import redact
from beluga_voice.providers.aws_transcribe.regions import PATH, Endpoint

SIGNING_SERVICE = "transcribe"
MAX_EXPIRES = 300
ENDPOINT_ENV = "AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING"
IGNORE_ENDPOINTS_ENV = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"

# botocore's provider METHOD names, as a user would recognise them.
_SOURCE_NAMES = {
    "env": "environment variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN)",
    "assume-role": "a role_arn in the profile (assume role)",
    "assume-role-with-web-identity": "web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)",
    "sso": "AWS IAM Identity Center / SSO profile (`aws sso login`)",
    "shared-credentials-file": "shared credentials file ~/.aws/credentials",
    "login": "`aws login` session",
    "custom-process": "credential_process in the profile",
    "config-file": "config file ~/.aws/config",
    "ec2-credentials-file": "legacy EC2 credentials file",
    "boto-config": "boto2 config file",
    "container-role": "container role (ECS/EKS credentials endpoint)",
    "iam-role": "instance role (EC2 instance metadata)",
}


class CredentialSource(Protocol):
    """Anything that hands out current credentials; called once per connection (in a thread)."""

    def resolve(self) -> ReadOnlyCredentials: ...


@runtime_checkable
class HasCredentials(Protocol):
    """A boto3 or botocore session (both have ``get_credentials``)."""

    def get_credentials(self) -> Any: ...


@dataclass(frozen=True, repr=False)
class StaticCredentials:
    """Explicit keys; the secret and token never appear in ``repr``."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)

    def resolve(self) -> ReadOnlyCredentials:
        if not self.access_key or not self.secret_key:
            raise CredentialsError("explicit credentials need both an access key id and a secret access key")
        return ReadOnlyCredentials(self.access_key, self.secret_key, self.token)

    def __repr__(self) -> str:
        return (
            f"StaticCredentials(access_key={_mask(self.access_key)}, token={'set' if self.token else 'none'})"
        )


class SessionCredentials:
    """Credentials of a boto3/botocore session the caller owns (its own caching and refresh apply)."""

    def __init__(self, session: HasCredentials) -> None:
        self._session = session

    def resolve(self) -> ReadOnlyCredentials:
        try:
            credentials = self._session.get_credentials()
            frozen = None if credentials is None else credentials.get_frozen_credentials()
        except (BotoCoreError, ClientError) as exc:
            raise CredentialsError(_failure_text(exc)) from None
        if frozen is None or not frozen.access_key:
            raise CredentialsError(_missing_text(_chain_methods(self._session), profile=None))
        return ReadOnlyCredentials(frozen.access_key, frozen.secret_key, frozen.token)

    def __repr__(self) -> str:
        return f"SessionCredentials({type(self._session).__name__})"


class ChainCredentials:
    """botocore's default chain (optionally for one profile), run again for every connection."""

    def __init__(self, profile: str | None = None) -> None:
        self.profile = profile
        self._session: botocore.session.Session | None = None

    def resolve(self) -> ReadOnlyCredentials:
        session = self._botocore_session()
        try:
            # load_credentials walks the chain afresh (role/SSO caches still apply), so rotated
            # environment keys and renewed roles are picked up by the next connection.
            credentials = session.get_component("credential_provider").load_credentials()
            frozen = None if credentials is None else credentials.get_frozen_credentials()
        except ProfileNotFound:
            raise CredentialsError(_profile_text(self.profile)) from None
        except (BotoCoreError, ClientError) as exc:
            raise CredentialsError(_failure_text(exc)) from None
        if frozen is None or not frozen.access_key:
            raise CredentialsError(_missing_text(_chain_methods(session), self.profile))
        return ReadOnlyCredentials(frozen.access_key, frozen.secret_key, frozen.token)

    def _botocore_session(self) -> botocore.session.Session:
        if self._session is None:
            try:
                self._session = botocore.session.Session(profile=self.profile)
                self._session.get_scoped_config()  # surfaces a missing profile now
            except ProfileNotFound:
                self._session = None
                raise CredentialsError(_profile_text(self.profile)) from None
        return self._session

    def __repr__(self) -> str:
        return f"ChainCredentials(profile={self.profile!r})"


def credential_source(
    credentials: CredentialSource | Credentials | ReadOnlyCredentials | tuple[str, ...] | None = None,
    session: HasCredentials | None = None,
    profile: str | None = None,
) -> CredentialSource:
    """One source from whatever the caller passed (nothing = botocore's default chain)."""
    if credentials is not None and session is not None:
        raise ConfigurationError("pass either credentials= or session=, not both")
    if session is not None:
        if not isinstance(session, HasCredentials):
            raise ConfigurationError(
                f"session= must be a boto3 or botocore session, got {type(session).__name__}"
            )
        return SessionCredentials(session)
    if credentials is None:
        return ChainCredentials(profile)
    if isinstance(credentials, ReadOnlyCredentials):
        return StaticCredentials(
            credentials.access_key or "", credentials.secret_key or "", credentials.token
        )
    if isinstance(credentials, tuple):
        if not 2 <= len(credentials) <= 3:
            raise ConfigurationError("credentials=(access_key, secret_key[, session_token]) expected")
        return StaticCredentials(*credentials)
    if isinstance(credentials, Credentials):
        return SessionCredentials(_Wrapped(credentials))
    return credentials


@dataclass(frozen=True)
class _Wrapped:
    credentials: Credentials

    def get_credentials(self) -> Credentials:
        return self.credentials


# --- endpoints ----------------------------------------------------------------------------------


def configured_endpoint_url(explicit: str | None) -> str | None:
    """``endpoint_url`` if given, else botocore's service-specific environment variable."""
    if explicit:
        return explicit
    if os.environ.get(IGNORE_ENDPOINTS_ENV, "").lower() == "true":
        return None
    return os.environ.get(ENDPOINT_ENV) or None


def endpoint_from_url(url: str, signing_region: str, *, allow_insecure: bool = False) -> Endpoint:
    """An :class:`Endpoint` for an override URL (``beluga serve``, a proxy, a private endpoint)."""
    parts = urlsplit(url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigurationError(
            f"endpoint_url {url!r} is not a ws://, wss://, http:// or https:// URL with a host; "
            "use e.g. wss://transcribestreaming.us-east-1.amazonaws.com:8443 or ws://127.0.0.1:8765"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(
            f"endpoint_url {redact(url)!r} must not carry a query, fragment or user info; "
            "give only scheme, host, port and path"
        )
    if scheme == "ws" and not allow_insecure and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"refusing plain ws:// to {parts.hostname}: the presigned URL is derived from your "
            "credentials and would cross the network in clear text. Use wss://, or pass "
            "allow_insecure=True for a network you trust."
        )
    port = parts.port or (443 if scheme == "wss" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    path = parts.path if parts.path not in ("", "/") else PATH
    return Endpoint(host=host, signing_region=signing_region, port=port, path=path, scheme=scheme)


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- signing ------------------------------------------------------------------------------------


def presign_url(
    endpoint: Endpoint,
    params: Mapping[str, str],
    credentials: ReadOnlyCredentials,
    *,
    expires: int = MAX_EXPIRES,
) -> str:
    """The presigned ``wss://`` URL for one connection (signed host includes the port).

    The result holds a signature and possibly a session token: log it only via ``redact``.
    """
    if not 1 <= expires <= MAX_EXPIRES:
        raise ConfigurationError(f"expires={expires} must be 1-{MAX_EXPIRES} seconds (the service's limit)")
    request = AWSRequest(method="GET", url=endpoint.url, params=dict(params))
    signer = SigV4QueryAuth(
        Credentials(credentials.access_key or "", credentials.secret_key or "", credentials.token),
        SIGNING_SERVICE,
        endpoint.signing_region,
        expires=expires,
    )
    signer.add_auth(request)
    return str(request.url)


# --- messages -----------------------------------------------------------------------------------


def _chain_methods(session: object) -> list[str]:
    get_component = getattr(session, "get_component", None)
    if get_component is None:
        inner = getattr(session, "_session", None)  # a boto3 session wraps a botocore one
        get_component = getattr(inner, "get_component", None)
    try:
        resolver = get_component("credential_provider") if get_component else None
        return [str(p.METHOD) for p in getattr(resolver, "providers", [])]
    except Exception:
        return []


def _missing_text(methods: list[str], profile: str | None) -> str:
    tried = [_SOURCE_NAMES.get(m, m) for m in methods] or list(_SOURCE_NAMES.values())
    listed = "\n".join(f"  - {t}" for t in tried)
    which = f" for profile {profile!r}" if profile else ""
    return (
        f"No AWS credentials found{which}. Sources tried, in order:\n{listed}\n"
        "Fix: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys), "
        "or run `aws configure` (or `aws sso login --profile NAME` and set AWS_PROFILE), "
        "or run on a host with an IAM role. The identity needs the IAM action "
        f"{IAM_ACTION}."
    )


def _profile_text(profile: str | None) -> str:
    return (
        f"AWS profile {profile!r} is not defined in ~/.aws/config or ~/.aws/credentials. "
        "Fix: create it with `aws configure --profile NAME`, or pick an existing one (`aws configure list-profiles`)."
    )


def _failure_text(exc: Exception) -> str:
    return (
        f"AWS credentials could not be loaded: {redact(str(exc))}. "
        "Fix: refresh them (e.g. `aws sso login`), or check the profile's configuration."
    )


def _mask(access_key: str) -> str:
    return f"'{access_key[:4]}…'" if len(access_key) > 8 else "'…'"

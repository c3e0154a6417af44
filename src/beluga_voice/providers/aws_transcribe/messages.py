"""Transcribe's event-stream messages in both directions, and its exceptions as typed errors.

Builders for what the client sends (audio, end of stream) and what the service sends (transcripts,
exceptions); :func:`classify` turns a decoded message into a typed frame whichever side reads it.
The per-chunk path reuses headers encoded once at import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from beluga_voice.errors import (
    BelugaError,
    ConfigurationError,
    CredentialsError,
    ProtocolError,
    RateLimitError,
    ServiceError,
    StreamConnectionError,
    StreamTimeoutError,
)
from beluga_voice.providers.aws_transcribe.eventstream import (
    EventStreamError,
    Message,
    decode_message,
    encode_headers,
    encode_prepared,
)
from beluga_voice.providers.aws_transcribe.redaction import redact

AUDIO_EVENT = "AudioEvent"
TRANSCRIPT_EVENT = "TranscriptEvent"
IAM_ACTION = "transcribe:StartStreamTranscriptionWebSocket"

_AUDIO_HEADERS = encode_headers(
    {":content-type": "application/octet-stream", ":event-type": AUDIO_EVENT, ":message-type": "event"}
)
_TRANSCRIPT_HEADERS = encode_headers(
    {":content-type": "application/json", ":event-type": TRANSCRIPT_EVENT, ":message-type": "event"}
)
_END_OF_STREAM = encode_prepared(_AUDIO_HEADERS, b"")

# HTTP status of each exception (the model's httpError traits; UnrecognizedClient from the WebSocket docs).
HTTP_STATUS: dict[str, int] = {
    "BadRequestException": 400,
    "UnrecognizedClientException": 403,
    "AccessDeniedException": 403,
    "ConflictException": 409,
    "LimitExceededException": 429,
    "InternalFailureException": 500,
    "ServiceUnavailableException": 503,
}


# --- builders -----------------------------------------------------------------------------------


def audio_event(pcm: bytes) -> bytes:
    """One AudioEvent message carrying ``pcm`` (the hot path: one CRC pass, no header encoding)."""
    return encode_prepared(_AUDIO_HEADERS, pcm)


def end_of_stream() -> bytes:
    """The empty AudioEvent that tells the service the audio is over."""
    return _END_OF_STREAM


def transcript_event(payload: bytes) -> bytes:
    """A TranscriptEvent message around JSON from ``transcript_event_payload``."""
    return encode_prepared(_TRANSCRIPT_HEADERS, payload)


def exception_event(name: str, message: str) -> bytes:
    """An exception message as the service sends it before closing the stream."""
    headers = encode_headers(
        {":content-type": "application/json", ":exception-type": name, ":message-type": "exception"}
    )
    return encode_prepared(headers, json.dumps({"Message": message}).encode("utf-8"))


# --- classification -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedEnvelope:
    """The outer message of a per-frame-signed AudioEvent (AWS JS SDK style), kept for verification."""

    date: datetime | int | None
    signature: bytes
    inner: bytes


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Audio from the client; an empty payload marks the end of the stream."""

    payload: bytes
    envelope: SignedEnvelope | None = None

    @property
    def is_end_of_stream(self) -> bool:
        return not self.payload


@dataclass(frozen=True, slots=True)
class TranscriptPayload:
    """The JSON of one TranscriptEvent (parse it with ``parse_transcript_event``)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class ExceptionFrame:
    """An exception (or ``:message-type`` error) the service sent."""

    name: str
    message: str

    def to_error(self) -> BelugaError:
        return error_for_exception(self.name, self.message)


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """An event type this client does not use; ignored rather than fatal (services add event types)."""

    event_type: str | None
    message: Message


Frame = AudioChunk | TranscriptPayload | ExceptionFrame | OtherEvent


def classify(message: Message) -> Frame:
    """What a decoded message is, for either side of the connection."""
    kind = message.message_type
    if kind in ("exception", "error"):
        return ExceptionFrame(_exception_name(message), _exception_message(message))
    if ":chunk-signature" in message.headers:
        return _signed_audio(message)
    if kind != "event":
        raise ProtocolError(f"unknown :message-type {kind!r} in an event-stream message")
    event = message.event_type
    if event == AUDIO_EVENT:
        return AudioChunk(message.payload)
    if event == TRANSCRIPT_EVENT:
        return TranscriptPayload(message.payload)
    return OtherEvent(event, message)


def _signed_audio(message: Message) -> AudioChunk:
    signature = message.get(":chunk-signature")
    if not isinstance(signature, bytes):
        raise ProtocolError("a signed frame's :chunk-signature header must be a byte array")
    date = message.get(":date")
    envelope = SignedEnvelope(date if isinstance(date, datetime | int) else None, signature, message.payload)
    if not message.payload:
        return AudioChunk(b"", envelope)
    try:
        inner = decode_message(message.payload)
    except EventStreamError as exc:
        raise ProtocolError(f"a signed frame does not wrap a valid message: {exc.message}") from None
    frame = classify(inner)
    if not isinstance(frame, AudioChunk):
        raise ProtocolError(f"a signed frame wraps {type(frame).__name__}, expected an AudioEvent")
    return AudioChunk(frame.payload, envelope)


def _exception_name(message: Message) -> str:
    return message.exception_type or "UnknownException"


def _exception_message(message: Message) -> str:
    header_text = message.get_str(":error-message")
    if header_text:
        return header_text
    text = message.payload.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(document, dict):
        for key in ("Message", "message"):
            if isinstance(document.get(key), str):
                return str(document[key])
    return text


# --- exceptions -> typed errors -----------------------------------------------------------------

_IDLE_TIMEOUT_MARKERS = ("no new audio was received", "timed out")
_SIGNATURE_MARKERS = ("signature", "security token", "credential", "access key")
_EXPIRED_MARKERS = ("expired", "signature expired")
_PARAMETER_MARKERS = (
    "validation error",
    "failed to satisfy constraint",
    "can't be used together",
    "can only be used with",
    "must include",
    "only one of",
    "not supported",
    "must be one of",
    "requires ",
    "language option",
    "dialect",
)
_CREDENTIAL_EXCEPTIONS = frozenset(
    {
        "UnrecognizedClientException",
        "AccessDeniedException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
    }
)


def error_for_exception(name: str, message: str) -> BelugaError:
    """The typed error for an exception the service reported (type and retryability decide retries).

    The message is scrubbed: AWS echoes the canonical request, key id and token in signature errors.
    """
    message = redact(message)
    lowered = message.lower()
    if name in _CREDENTIAL_EXCEPTIONS or (
        name == "BadRequestException" and any(m in lowered for m in _SIGNATURE_MARKERS)
    ):
        expired = name == "ExpiredTokenException" or any(m in lowered for m in _EXPIRED_MARKERS)
        return CredentialsError(_credentials_text(name, message, expired), retryable=expired)
    if name == "LimitExceededException":
        return RateLimitError(name, message)
    if name == "BadRequestException":
        if any(m in lowered for m in _IDLE_TIMEOUT_MARKERS):
            return StreamTimeoutError(
                f"{name}: {message} (the service closes a stream after 15 s without audio; "
                "send silence while there is no speech)"
            )
        if any(m in lowered for m in _PARAMETER_MARKERS):
            return ConfigurationError(f"{name}: {message}")
        return ServiceError(name, message, retryable=False)
    return ServiceError(name, message)


def error_for_upgrade(status: int, body: bytes, exception_name: str | None = None) -> BelugaError:
    """The typed error for a refused WebSocket upgrade (HTTP status, body, ``x-amzn-ErrorType``)."""
    name = (exception_name or "").split(":")[0] or None
    text = redact(_upgrade_body_text(body))
    if name:
        error = error_for_exception(name, text or f"HTTP {status}")
        if not (status == 403 and not isinstance(error, CredentialsError)):
            return error
    detail = f"HTTP {status}" + (f": {text}" if text else "")
    if status in (401, 403):
        return CredentialsError(_credentials_text("HTTP 403", text or "Forbidden", expired=False))
    if status == 429:
        return RateLimitError("LimitExceededException", detail)
    if status == 404:
        return ConfigurationError(
            f"WebSocket upgrade refused ({detail}); the endpoint has no streaming path. "
            "Check endpoint_url (it should point at a Transcribe streaming endpoint or `beluga serve`)."
        )
    if status == 409:
        return ServiceError("ConflictException", detail)
    if 400 <= status < 500:
        return ServiceError("BadRequestException", detail, retryable=False)
    if status in (500, 503):
        name = "InternalFailureException" if status == 500 else "ServiceUnavailableException"
        return ServiceError(name, detail)
    if status >= 500:
        return StreamConnectionError(f"WebSocket upgrade refused ({detail}); retrying may help.")
    return ProtocolError(f"WebSocket upgrade answered with unexpected {detail}")


def _upgrade_body_text(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return text[:500]
    if isinstance(document, dict):
        for key in ("Message", "message"):
            if isinstance(document.get(key), str):
                return str(document[key])
    return text[:500]


def _credentials_text(name: str, message: str, expired: bool) -> str:
    if expired:
        fix = "the credentials expired; a new connection resolves fresh credentials from the chain."
    else:
        fix = (
            "check the access key and secret (environment variables, `aws configure`, or the IAM role), "
            f"and that the identity is allowed the IAM action {IAM_ACTION}."
        )
    return f"Amazon Transcribe refused the credentials ({name}: {message}); {fix}"

"""Typed errors with a stable ``code`` and a ``retryable`` flag.

Every failure a user can meet maps to one of these, so callers (and the reconnect logic) decide
what to do from the type and the flag, never from message text.
"""

from __future__ import annotations

from typing import ClassVar


class BelugaError(Exception):
    """Base of every error this library raises on purpose."""

    code: ClassVar[str] = "error"
    default_retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = self.default_retryable if retryable is None else retryable

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, retryable={self.retryable}, message={self.message!r})"
        )


class CredentialsError(BelugaError):
    """No usable AWS credentials, or the service rejected them."""

    code = "credentials"


class ConfigurationError(BelugaError):
    """A parameter is invalid or a combination of parameters is not allowed."""

    code = "configuration"


class UnsupportedRegionError(ConfigurationError):
    """The region has no Transcribe Streaming endpoint."""

    code = "unsupported_region"


class AudioFormatError(BelugaError):
    """Audio that cannot be read or converted: corrupt, empty, wrong rate, too many channels."""

    code = "audio_format"


class ModelNotFoundError(BelugaError):
    """A local model's files are missing or damaged."""

    code = "model_not_found"


class StreamConnectionError(BelugaError):
    """The connection failed or dropped; a new connection may work."""

    code = "connection"
    default_retryable = True


class StreamTimeoutError(BelugaError):
    """No answer within the allowed time."""

    code = "timeout"
    default_retryable = True


class ProtocolError(BelugaError):
    """Bytes on the wire that break the event-stream or WebSocket protocol."""

    code = "protocol"


# Amazon Transcribe exception names that a new connection may cure.
RETRYABLE_SERVICE_EXCEPTIONS = frozenset(
    {"InternalFailureException", "ServiceUnavailableException", "LimitExceededException"}
)


class ServiceError(BelugaError):
    """An exception the speech service reported, with its own name and message."""

    code = "service"

    def __init__(self, exception_name: str, service_message: str, *, retryable: bool | None = None) -> None:
        if retryable is None:
            retryable = exception_name in RETRYABLE_SERVICE_EXCEPTIONS
        super().__init__(f"{exception_name}: {service_message}", retryable=retryable)
        self.exception_name = exception_name
        self.service_message = service_message


class RateLimitError(ServiceError):
    """The service refused for quota or rate reasons (LimitExceededException, HTTP 429)."""

    code = "rate_limit"
    default_retryable = True

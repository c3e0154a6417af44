"""The service's exceptions as the server raises them: a name, the service's wording, an HTTP status."""

from __future__ import annotations

from dataclasses import dataclass

from beluga_voice.providers.aws_transcribe.messages import HTTP_STATUS

DEFAULT_MESSAGES = {
    "BadRequestException": "The request was not valid.",
    "ConflictException": "A new stream started with the same session ID. The current stream has been terminated.",
    "LimitExceededException": "You have reached your limit of concurrent streams. Try again later.",
    "InternalFailureException": (
        "A problem occurred while processing the audio. Amazon Transcribe terminated processing."
    ),
    "ServiceUnavailableException": "Service is currently unavailable. Try your request later.",
}

UNEXPECTED_FRAME = "Unexpected WebSocket frame received."
STREAM_TOO_BIG = "Your stream is too big"


def idle_timeout_message(seconds: float) -> str:
    return f"Your request timed out because no new audio was received for {seconds:g} seconds."


@dataclass(frozen=True)
class StreamException(Exception):
    """Ends a stream with an exception frame (or refuses its upgrade with ``http_status``)."""

    name: str
    message: str
    status: int | None = None

    @classmethod
    def named(cls, name: str, message: str | None = None) -> StreamException:
        return cls(name, message if message is not None else DEFAULT_MESSAGES.get(name, name))

    @property
    def http_status(self) -> int:
        if self.status is not None:
            return self.status
        return HTTP_STATUS.get(self.name, 403 if self.name.endswith("TokenException") else 400)

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


def bad_request(message: str) -> StreamException:
    return StreamException("BadRequestException", message)

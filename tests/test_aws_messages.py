"""Transcribe's messages on the wire, both directions, and exceptions mapped to typed errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer

from beluga_voice.errors import (
    BelugaError,
    ConfigurationError,
    CredentialsError,
    ProtocolError,
    RateLimitError,
    ServiceError,
    StreamTimeoutError,
)
from beluga_voice.providers.aws_transcribe.eventstream import (
    Header,
    HeaderInput,
    HeaderType,
    decode_message,
    encode_message,
)
from beluga_voice.providers.aws_transcribe.messages import (
    IAM_ACTION,
    AudioChunk,
    ExceptionFrame,
    OtherEvent,
    TranscriptPayload,
    audio_event,
    classify,
    end_of_stream,
    error_for_exception,
    error_for_upgrade,
    exception_event,
    transcript_event,
)


def _botocore(frame: bytes) -> Any:
    buffer = EventStreamBuffer()
    buffer.add_data(frame)
    decoded: list[Any] = list(buffer)
    (message,) = decoded
    return message


def test_audio_events_carry_exactly_the_three_string_headers_the_service_expects() -> None:
    pcm = bytes(range(256)) * 12
    message = _botocore(audio_event(pcm))
    assert message.headers == {
        ":content-type": "application/octet-stream",
        ":event-type": "AudioEvent",
        ":message-type": "event",
    }
    assert message.payload == pcm
    assert audio_event(pcm) == encode_message(message.headers, pcm)  # the prepared path is the plain one


def test_end_of_stream_is_an_empty_audio_event_never_a_text_frame() -> None:
    frame = end_of_stream()
    assert isinstance(frame, bytes)
    message = _botocore(frame)
    assert message.headers[":event-type"] == "AudioEvent"
    assert message.payload == b""
    chunk = classify(decode_message(frame))
    assert isinstance(chunk, AudioChunk) and chunk.is_end_of_stream


def test_service_messages_classify_for_the_client() -> None:
    payload = b'{"Transcript":{"Results":[]}}'
    message = _botocore(transcript_event(payload))
    assert message.headers[":content-type"] == "application/json"
    assert classify(decode_message(transcript_event(payload))) == TranscriptPayload(payload)

    frame = exception_event("LimitExceededException", "You have reached your limit.")
    message = _botocore(frame)
    assert message.headers[":message-type"] == "exception"
    assert message.headers[":exception-type"] == "LimitExceededException"
    assert json.loads(message.payload) == {"Message": "You have reached your limit."}
    assert classify(decode_message(frame)) == ExceptionFrame(
        "LimitExceededException", "You have reached your limit."
    )


def test_message_type_error_is_an_exception_too() -> None:
    frame = encode_message(
        {":message-type": "error", ":error-code": "InternalError", ":error-message": "boom"}, b""
    )
    assert classify(decode_message(frame)) == ExceptionFrame("InternalError", "boom")


def test_unknown_event_types_are_ignored_but_unknown_message_types_are_errors() -> None:
    other = classify(
        decode_message(encode_message({":message-type": "event", ":event-type": "Future"}, b"{}"))
    )
    assert isinstance(other, OtherEvent) and other.event_type == "Future"
    with pytest.raises(ProtocolError):
        classify(decode_message(encode_message({":message-type": "weird"}, b"")))


def test_per_frame_signed_audio_is_unwrapped_with_its_signature_kept() -> None:
    signature = bytes(range(32))
    date = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    headers: dict[str, HeaderInput] = {
        ":date": Header(HeaderType.TIMESTAMP, date),
        ":chunk-signature": signature,
    }
    chunk = classify(decode_message(encode_message(headers, audio_event(b"\x01\x02" * 100))))
    assert isinstance(chunk, AudioChunk)
    assert chunk.payload == b"\x01\x02" * 100
    assert (
        chunk.envelope is not None and chunk.envelope.signature == signature and chunk.envelope.date == date
    )
    last = classify(decode_message(encode_message(headers, b"")))
    assert isinstance(last, AudioChunk) and last.is_end_of_stream
    with pytest.raises(ProtocolError):
        classify(decode_message(encode_message(headers, b"not a message")))


@pytest.mark.parametrize(
    ("name", "message", "kind", "retryable"),
    [
        ("LimitExceededException", "too many streams", RateLimitError, True),
        ("InternalFailureException", "oops", ServiceError, True),
        ("ServiceUnavailableException", "busy", ServiceError, True),
        ("ConflictException", "session id in use", ServiceError, False),
        ("UnrecognizedClientException", "The security token included in the request is invalid.", CredentialsError, False),
        ("AccessDeniedException", "not authorized", CredentialsError, False),
        ("BadRequestException", "The request signature we calculated does not match the signature you provided.", CredentialsError, False),
        ("BadRequestException", "Signature expired: 20260101T000000Z is now earlier than ...", CredentialsError, True),
        ("BadRequestException", "Your request timed out because no new audio was received for 15 seconds.", StreamTimeoutError, True),
        ("BadRequestException", "1 validation error detected: Value 'xx' at 'languageCode' ...", ConfigurationError, False),
        ("BadRequestException", "Your stream is too big", ServiceError, False),
        ("SomethingNewException", "?", ServiceError, False),
    ],
)  # fmt: skip
def test_exceptions_map_to_typed_errors_with_the_right_retry_decision(
    name: str, message: str, kind: type[BelugaError], retryable: bool
) -> None:
    error = error_for_exception(name, message)
    assert type(error) is kind
    assert error.retryable is retryable
    if isinstance(error, CredentialsError) and not retryable:
        assert IAM_ACTION in str(error) and "aws configure" in str(error)


def test_signature_errors_echoing_the_canonical_request_leak_no_secret() -> None:
    token = "IQoJb3JpZ2luX2VjEHgaCXVzLWVhc3QtMSJHMEUCIQDsecretTOKEN"
    echoed = (
        "The request signature we calculated does not match the signature you provided.\n"
        "The Canonical String for this request should have been\n'GET\n/stream-transcription-websocket\n"
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA"
        "IOSFODNN7EXAMPLE%2F20260101%2Fus-east-1"
        f"%2Ftranscribe%2Faws4_request&X-Amz-Security-Token={token}&X-Amz-Signature=deadbeef'"
    )
    text = str(error_for_exception("BadRequestException", echoed)) + str(
        error_for_upgrade(403, echoed.encode())
    )
    assert token not in text and ("AKIA" + "IOSFODNN7EXAMPLE") not in text and "deadbeef" not in text
    assert "signature we calculated does not match" in text


@pytest.mark.parametrize(
    ("status", "body", "error_type", "kind", "retryable"),
    [
        (403, b'{"message":"Forbidden"}', None, CredentialsError, False),
        (403, b"", "UnrecognizedClientException:http://internal.amazon.com/", CredentialsError, False),
        (429, b"", None, RateLimitError, True),
        (500, b"", None, ServiceError, True),
        (503, b"", None, ServiceError, True),
        (502, b"", None, BelugaError, True),
        (
            400,
            b'{"Message":"1 validation error detected: x"}',
            "BadRequestException",
            ConfigurationError,
            False,
        ),
        (404, b"", None, ConfigurationError, False),
    ],
)
def test_refused_upgrades_map_to_typed_errors(
    status: int, body: bytes, error_type: str | None, kind: type[BelugaError], retryable: bool
) -> None:
    error = error_for_upgrade(status, body, error_type)
    assert isinstance(error, kind)
    assert error.retryable is retryable

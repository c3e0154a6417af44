"""A protocol-level fake of Amazon Transcribe Streaming for the client tests, and its own checks.

It speaks the real wire protocol over a real socket on 127.0.0.1 with the project's codec, verifies
the presigned URL's SigV4 signature (recomputed here from the spec, keyed with botocore's signer),
parses the query with ``TranscribeConfig.from_query_params``, and plays a scripted conversation.
Only AWS is faked; everything of ours is real.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Literal
from urllib.parse import parse_qsl, quote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from beluga_voice.errors import ConfigurationError
from beluga_voice.providers.aws_transcribe.config import TranscribeConfig
from beluga_voice.providers.aws_transcribe.eventstream import EventStreamDecoder
from beluga_voice.providers.aws_transcribe.messages import (
    AudioChunk,
    classify,
    exception_event,
    transcript_event,
)
from beluga_voice.providers.aws_transcribe.transcript_json import transcript_event_payload
from beluga_voice.stt.model import TranscriptResult, Word

ACCESS_KEY = "AKIDEXAMPLEBELUGA0001"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEJr//////////wEaDEXAMPLESESSIONTOKENbeluga=="
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def expected_signature(url: str, secret_key: str) -> str:
    """The SigV4 query signature ``url`` should carry, rebuilt from the protocol's rules."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(pairs)
    signed = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs if k != "X-Amz-Signature"
    )
    canonical_request = "\n".join(
        [
            "GET",
            parts.path,
            "&".join(f"{k}={v}" for k, v in signed),
            f"host:{parts.netloc}",
            "",
            params["X-Amz-SignedHeaders"],
            EMPTY_SHA256,
        ]
    )
    scope = params["X-Amz-Credential"].split("/", 1)[1]
    _date, region, service, _terminator = scope.split("/")
    string_to_sign = "\n".join(
        [
            params["X-Amz-Algorithm"],
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    request = AWSRequest(method="GET", url=url)
    request.context["timestamp"] = params["X-Amz-Date"]
    signer = SigV4Auth(Credentials(params["X-Amz-Credential"].split("/")[0], secret_key), service, region)
    return str(signer.signature(string_to_sign, request))


@dataclass
class Received:
    """What one connection delivered to the fake service."""

    params: dict[str, str]
    path: str
    config: TranscribeConfig | None = None
    chunks: list[bytes] = field(default_factory=list)
    ended: bool = False
    frames_after_end: int = 0
    text_frames: int = 0
    client_closed: bool = False

    @property
    def audio(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def bytes_per_second(self) -> int:
        channels = int(self.params.get("number-of-channels", "1"))
        return int(self.params["sample-rate"]) * 2 * channels


class FakeConnection:
    """The script's handle on one accepted connection."""

    def __init__(self, ws: ServerConnection, received: Received) -> None:
        self.ws = ws
        self.received = received
        self.changed = asyncio.Condition()

    async def audio(self, seconds: float) -> None:
        """Wait until ``seconds`` of audio (or the end of stream) arrived."""
        need = int(seconds * self.received.bytes_per_second)
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.received.audio) >= need or self.received.ended)

    async def until_end(self) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.received.ended or self.received.client_closed)

    async def results(self, *results: TranscriptResult) -> None:
        await self.ws.send(transcript_event(transcript_event_payload(results)))

    async def exception(self, name: str, message: str) -> None:
        await self.ws.send(exception_event(name, message))
        await self.ws.close()

    async def close(self, code: int = 1000) -> None:
        await self.ws.close(code)


Script = Callable[[FakeConnection], Awaitable[None]]


async def echo_duration(conn: FakeConnection) -> None:
    """The default script: at the end of stream, one final saying how much audio arrived."""
    await conn.until_end()
    seconds = len(conn.received.audio) / conn.received.bytes_per_second
    await conn.results(final(f"{seconds:.3f}", 0.0, seconds))


def final(
    text: str, start: float, end: float, *, result_id: str | None = None, **extra: object
) -> TranscriptResult:
    words = tuple(Word(w, start, end, confidence=0.9) for w in text.split())
    return TranscriptResult(result_id or str(uuid.uuid4()), False, start, end, text, words, **extra)  # type: ignore[arg-type]


class FakeTranscribe:
    """The fake service: ``async with FakeTranscribe(script) as fake: ... fake.url ...``."""

    def __init__(
        self,
        script: Script = echo_duration,
        *,
        secret_key: str = SECRET_KEY,
        auth_failure: Literal["upgrade", "frame"] = "upgrade",
        refuse_status: int | None = None,
    ) -> None:
        self.script = script
        self.secret_key = secret_key
        self.auth_failure = auth_failure
        self.refuse_status = refuse_status
        self.connections: list[Received] = []
        self.attempts = 0
        self._server: Server | None = None
        self._pending_errors: dict[int, tuple[str, str]] = {}

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def __aenter__(self) -> FakeTranscribe:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._check_request,
            process_response=self._add_headers,
            compression=None,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.attempts += 1
        if self.refuse_status is not None:
            response = connection.respond(HTTPStatus(self.refuse_status), '{"message":"refused by the test"}')
            return response
        url = f"ws://{request.headers['Host']}{request.path}"
        params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        problem = None
        if params.get("X-Amz-Signature") != expected_signature(url, self.secret_key):
            problem = (
                "UnrecognizedClientException",
                "The request signature we calculated does not match the signature you provided.",
            )
        elif int(params.get("X-Amz-Expires", "0")) > 300:
            problem = ("BadRequestException", "X-Amz-Expires must be at most 300")
        if problem is not None:
            if self.auth_failure == "upgrade":
                response = connection.respond(HTTPStatus.FORBIDDEN, json.dumps({"message": problem[1]}))
                response.headers["x-amzn-ErrorType"] = f"{problem[0]}:http://internal.amazon.com/coral/"
                return response
            self._pending_errors[id(connection)] = problem
        return None

    def _add_headers(self, connection: ServerConnection, request: Request, response: Response) -> Response:
        response.headers["x-amzn-RequestId"] = "req-" + uuid.uuid4().hex[:8]
        params = dict(parse_qsl(urlsplit(request.path).query))
        response.headers["x-amzn-SessionId"] = params.get("session-id", "generated")
        return response

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        params = dict(parse_qsl(urlsplit(ws.request.path).query, keep_blank_values=True))
        received = Received(params=params, path=urlsplit(ws.request.path).path)
        self.connections.append(received)
        conn = FakeConnection(ws, received)
        problem = self._pending_errors.pop(id(ws), None)
        if problem is not None:
            await conn.exception(*problem)
            return
        region = params["X-Amz-Credential"].split("/")[2]
        try:
            received.config = TranscribeConfig.from_query_params(params, region)
        except ConfigurationError as exc:
            await conn.exception("BadRequestException", exc.message)
            return
        reader = asyncio.create_task(self._read(conn))
        try:
            await self.script(conn)
            await ws.close()
        finally:
            reader.cancel()

    async def _read(self, conn: FakeConnection) -> None:
        decoder = EventStreamDecoder()
        try:
            async for data in conn.ws:
                if isinstance(data, str):
                    conn.received.text_frames += 1
                    continue
                for message in decoder.feed(data):
                    frame = classify(message)
                    assert isinstance(frame, AudioChunk)
                    if conn.received.ended:
                        conn.received.frames_after_end += 1
                    elif frame.is_end_of_stream:
                        conn.received.ended = True
                    else:
                        conn.received.chunks.append(frame.payload)
                async with conn.changed:
                    conn.changed.notify_all()
        except ConnectionClosed:
            pass
        conn.received.client_closed = True
        async with conn.changed:
            conn.changed.notify_all()


# --- the fake's own checks: a fake that accepts anything would make the client tests worthless ---


def test_signature_check_accepts_a_botocore_presigned_url_and_rejects_any_change() -> None:
    from beluga_voice.providers.aws_transcribe.regions import Endpoint
    from beluga_voice.providers.aws_transcribe.signing import presign_url

    url = presign_url(
        Endpoint("127.0.0.1", "us-east-1", port=8443, scheme="ws"),
        {"language-code": "en-US", "vocabulary-names": "a,b c"},
        Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN).get_frozen_credentials(),
    )
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    assert expected_signature(url, SECRET_KEY) == signature
    assert expected_signature(url, SECRET_KEY[:-1] + "X") != signature
    assert (
        expected_signature(url.replace("language-code=en-US", "language-code=de-DE"), SECRET_KEY) != signature
    )
    assert expected_signature(url.replace(":8443", ":443"), SECRET_KEY) != signature

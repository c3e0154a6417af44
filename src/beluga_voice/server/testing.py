"""A minimal raw client of the protocol, for tests against ``beluga serve`` at the byte level.

It signs URLs with botocore (as real clients do), can sign each frame the way the AWS JavaScript
SDK does, and reads every frame back as a decoded message.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from beluga_voice.providers.aws_transcribe.eventstream import (
    Header,
    HeaderType,
    Message,
    decode_message,
    encode_headers,
    encode_message,
)
from beluga_voice.providers.aws_transcribe.messages import ExceptionFrame, classify
from beluga_voice.providers.aws_transcribe.transcript_json import parse_transcript_event
from beluga_voice.server.auth import AMZ_DATE_FORMAT, EVENT_ALGORITHM, SERVICE, Credential, signing_key
from beluga_voice.server.handshake import STREAM_PATH
from beluga_voice.stt.model import TranscriptResult


def presigned_url(
    endpoint: str,
    params: Mapping[str, str],
    credential: Credential,
    *,
    region: str = "us-east-1",
    expires: int = 300,
) -> str:
    """A stream URL signed by botocore's SigV4 query signer (host signed with its port)."""
    parts = urlsplit(endpoint)
    request = AWSRequest(method="GET", url=f"https://{parts.netloc}{STREAM_PATH}", params=dict(params))
    creds = Credentials(credential.access_key_id, credential.secret_access_key, credential.session_token)
    SigV4QueryAuth(creds, SERVICE, region, expires=expires).add_auth(request)
    scheme = "wss" if parts.scheme in ("wss", "https") else "ws"
    signed = str(request.url)
    return f"{scheme}://{signed.removeprefix('https://')}"


@dataclass
class FrameSigner:
    """Signs AudioEvent frames in a chain seeded by the URL's signature (AWS JS SDK style)."""

    credential: Credential
    url: str
    region: str = "us-east-1"
    prior: str = field(init=False)

    def __post_init__(self) -> None:
        query = dict(pair.split("=", 1) for pair in urlsplit(self.url).query.split("&"))
        self.prior = query["X-Amz-Signature"]

    def envelope(self, inner: bytes, date: datetime | None = None) -> bytes:
        date = (date or datetime.now(UTC)).replace(microsecond=0)
        date_header = encode_headers({":date": Header(HeaderType.TIMESTAMP, date)})
        day = date.strftime("%Y%m%d")
        string_to_sign = "\n".join(
            (
                EVENT_ALGORITHM,
                date.strftime(AMZ_DATE_FORMAT),
                f"{day}/{self.region}/{SERVICE}/aws4_request",
                self.prior,
                hashlib.sha256(date_header).hexdigest(),
                hashlib.sha256(inner).hexdigest(),
            )
        )
        key = signing_key(self.credential.secret_access_key, day, self.region)
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).digest()
        self.prior = signature.hex()
        return encode_message(
            {
                ":date": Header(HeaderType.TIMESTAMP, date),
                ":chunk-signature": Header(HeaderType.BYTE_ARRAY, signature),
            },
            inner,
        )


@dataclass
class StreamReply:
    """Everything the server sent on one stream, and how it closed."""

    raw: list[bytes]
    close_code: int | None
    close_reason: str

    @property
    def messages(self) -> list[Message]:
        return [decode_message(frame) for frame in self.raw]

    @property
    def results(self) -> list[TranscriptResult]:
        out: list[TranscriptResult] = []
        for message in self.messages:
            if message.event_type == "TranscriptEvent":
                out.extend(parse_transcript_event(message.payload))
        return out

    @property
    def finals(self) -> list[TranscriptResult]:
        return [r for r in self.results if r.is_final]

    @property
    def exception(self) -> ExceptionFrame | None:
        for message in self.messages:
            frame = classify(message)
            if isinstance(frame, ExceptionFrame):
                return frame
        return None

    @property
    def text(self) -> str:
        return " ".join(r.text for r in self.finals if r.text).strip()


async def read_reply(connection: ClientConnection) -> StreamReply:
    """Read frames until the server closes (or drops) the connection."""
    raw: list[bytes] = []
    try:
        async for frame in connection:
            raw.append(frame if isinstance(frame, bytes) else frame.encode())
    except ConnectionClosed:
        pass
    close = connection.protocol.close_rcvd
    return StreamReply(raw, close.code if close else None, close.reason if close else "")


def open_stream(url: str, **options: object) -> connect:
    """A websockets connection to ``url`` with the settings a Transcribe client uses."""
    return connect(url, compression=None, max_size=None, open_timeout=10, **options)  # type: ignore[arg-type]

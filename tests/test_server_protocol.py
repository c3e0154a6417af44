"""beluga serve at the protocol level: real sockets on 127.0.0.1, the real codec, botocore as referee.

The engine here is the server's own ``echo`` engine (the protocol path without recognition); the
tests with the real model and real speech are in test_server_speech.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import struct
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from botocore.eventstream import EventStreamBuffer
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from beluga_voice.providers.aws_transcribe.eventstream import encode_message
from beluga_voice.providers.aws_transcribe.messages import audio_event, end_of_stream
from beluga_voice.server import (
    Credential,
    CredentialStore,
    FaultPlan,
    ServerConfig,
    TranscribeServer,
    echo_engine,
    serve_in_background,
)
from beluga_voice.server.testing import FrameSigner, StreamReply, open_stream, presigned_url, read_reply

KEY = Credential("AKIDEXAMPLE0000SERVER", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
TEMP = Credential(
    "ASIAEXAMPLE0000TEMP01", "temporary/secret/key/value/for/tests/000", "FQoGZXIvYXdzEXAMPLEtokenvalue//+="
)
PARAMS = {"language-code": "en-US", "media-encoding": "pcm", "sample-rate": "16000"}
CHUNK = b"\x00\x01" * 1600  # 100 ms of 16 kHz PCM


def config(**overrides: object) -> ServerConfig:
    options: dict[str, object] = {
        "port": 0,
        "credentials": CredentialStore([KEY, TEMP]),
        "engine": echo_engine,
        "idle_timeout": 2.0,
    }
    options.update(overrides)
    return ServerConfig(**options)  # type: ignore[arg-type]


@pytest.fixture
async def server() -> AsyncIterator[TranscribeServer]:
    async with serve_in_background(config()) as running:
        yield running


def signed(server: TranscribeServer, credential: Credential = KEY, /, **params: str) -> str:
    return presigned_url(server.endpoint, {**PARAMS, **params}, credential)


async def stream_audio(url: str, seconds: float = 3.0, *, end: bool = True) -> StreamReply:
    """Send ``seconds`` of audio as fast as the server takes it; a refusing server may close early."""
    async with open_stream(url) as ws:
        with contextlib.suppress(ConnectionClosed):
            for _ in range(int(seconds * 10)):
                await ws.send(audio_event(CHUNK))
            if end:
                await ws.send(end_of_stream())
        return await read_reply(ws)


def botocore_messages(reply: StreamReply) -> list[dict[str, object]]:
    """Every frame decoded by botocore's own parser (an outside reference for our encoder)."""
    decoded: list[dict[str, object]] = []
    for frame in reply.raw:
        buffer = EventStreamBuffer()
        buffer.add_data(frame)
        messages = list(buffer)
        assert len(messages) == 1, "one event-stream message per WebSocket frame"
        decoded.append(messages[0].to_response_dict())
    return decoded


# --- handshake ------------------------------------------------------------------------------------


async def raw_handshake(
    server: TranscribeServer, target: str, extra: list[str]
) -> tuple[int, dict[str, str]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", *extra, "", ""]
    writer.write("\r\n".join(lines).encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    status_line, *header_lines = head.decode().strip().split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


def accept_for(key: str) -> str:
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


async def test_handshake_with_duplicated_headers_origin_and_subprotocol_is_accepted(
    server: TranscribeServer,
) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    target = signed(server).split(str(server.port), 1)[1]
    status, headers = await raw_handshake(
        server,
        target,
        [
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Connection: keep-alive, Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Key: bm90LWEta2V5",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Version: 13",
            "Origin: https://app.example.com",
            "Sec-WebSocket-Protocol: mqtt",
        ],
    )
    assert status == 101
    assert headers["sec-websocket-accept"] == accept_for(key)
    assert "sec-websocket-protocol" not in headers  # offered, not selected: the service does the same
    assert headers["x-amzn-requestid"] and headers["x-amzn-sessionid"]


async def test_other_paths_are_not_found(server: TranscribeServer) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    status, _ = await raw_handshake(
        server,
        "/elsewhere",
        [
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ],
    )
    assert status == 404


async def test_session_id_is_echoed_in_the_upgrade_response(server: TranscribeServer) -> None:
    session = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    async with open_stream(signed(server, **{"session-id": session})) as ws:
        assert ws.response is not None
        assert ws.response.headers["x-amzn-SessionId"] == session
        await ws.send(end_of_stream())
        reply = await read_reply(ws)
    assert reply.close_code == 1000


# --- authentication -------------------------------------------------------------------------------


async def test_signed_stream_gets_growing_partials_then_one_final_per_segment(
    server: TranscribeServer,
) -> None:
    reply = await stream_audio(signed(server))
    assert reply.exception is None and reply.close_code == 1000
    by_id: dict[str, list[bool]] = {}
    for result in reply.results:
        by_id.setdefault(result.result_id, []).append(result.is_partial)
    for flags in by_id.values():
        assert flags[-1] is False and all(flags[:-1]), "partials, then exactly one final"
    decoded = botocore_messages(reply)
    assert all(m["headers"][":event-type"] == "TranscriptEvent" for m in decoded)  # type: ignore[index]
    body = json.loads(decoded[0]["body"])  # type: ignore[arg-type]
    item = body["Transcript"]["Results"][0]["Alternatives"][0]["Items"][0]
    assert "Stable" not in item and "Confidence" not in item  # no stabilization asked; a partial


async def test_temporary_credentials_and_signed_user_agent_with_spaces_and_hash(
    server: TranscribeServer,
) -> None:
    url = signed(
        server,
        TEMP,
        **{"x-amz-user-agent": "aws-sdk-js/3.600.0 ua/2.1 os/linux#6.1 lang/js md/browser#Chrome_126"},
    )
    reply = await stream_audio(url, 1.0)
    assert reply.exception is None
    assert reply.close_code == 1000


@pytest.mark.parametrize(
    ("credential", "name", "fragment"),
    [
        (
            Credential(KEY.access_key_id, "not-the-secret"),
            "BadRequestException",
            "signature we calculated does not match",
        ),
        (
            Credential("AKIDUNKNOWN000000000", KEY.secret_access_key),
            "UnrecognizedClientException",
            "security token",
        ),
        (
            Credential(TEMP.access_key_id, TEMP.secret_access_key, "wrong-token"),
            "UnrecognizedClientException",
            "security token",
        ),
        (
            Credential(TEMP.access_key_id, TEMP.secret_access_key),
            "UnrecognizedClientException",
            "security token",
        ),
    ],
)
async def test_bad_credentials_are_answered_with_the_service_exception_frame(
    server: TranscribeServer, credential: Credential, name: str, fragment: str
) -> None:
    reply = await stream_audio(signed(server, credential), 0.5)
    assert reply.exception is not None
    assert reply.exception.name == name
    assert fragment in reply.exception.message
    assert not reply.results


async def test_a_tampered_parameter_breaks_the_signature(server: TranscribeServer) -> None:
    url = signed(server).replace("sample-rate=16000", "sample-rate=8000")
    reply = await stream_audio(url, 0.5)
    assert reply.exception is not None and "does not match" in reply.exception.message


async def test_expired_and_future_urls_are_refused() -> None:
    later = config(clock=lambda: datetime.now(UTC) + timedelta(seconds=301))
    async with serve_in_background(later) as server:
        reply = await stream_audio(signed(server), 0.5)
    assert reply.exception is not None and reply.exception.message.startswith("Signature expired")
    earlier = config(clock=lambda: datetime.now(UTC) - timedelta(minutes=6))
    async with serve_in_background(earlier) as server:
        reply = await stream_audio(signed(server), 0.5)
    assert reply.exception is not None and reply.exception.message.startswith("Signature not yet current")


async def test_expires_over_300_seconds_is_refused(server: TranscribeServer) -> None:
    url = presigned_url(server.endpoint, PARAMS, KEY, expires=301)
    reply = await stream_audio(url, 0.5)
    assert reply.exception is not None and "X-Amz-Expires" in reply.exception.message


async def test_unsigned_url_is_refused_when_auth_is_on(server: TranscribeServer) -> None:
    reply = await stream_audio(server.url + "?language-code=en-US&media-encoding=pcm&sample-rate=16000", 0.5)
    assert reply.exception is not None and "Missing Authentication Token" in reply.exception.message


async def test_http_rejection_mode_refuses_the_upgrade_with_status_and_error_type() -> None:
    async with serve_in_background(config(rejection="http")) as server:
        with pytest.raises(InvalidStatus) as refused:
            async with open_stream(signed(server, Credential(KEY.access_key_id, "wrong"))):
                pass
    response = refused.value.response
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "BadRequestException"
    assert "does not match" in json.loads(response.body)["Message"]


# --- parameters -----------------------------------------------------------------------------------


async def test_invalid_parameters_are_worded_as_the_service_words_them(server: TranscribeServer) -> None:
    reply = await stream_audio(signed(server, **{"sample-rate": "100"}), 0.1)
    assert reply.exception is not None and reply.exception.name == "BadRequestException"
    assert reply.exception.message.startswith(
        "1 validation error detected: Value '100' at 'mediaSampleRateHertz'"
    )


async def test_unknown_parameters_are_ignored(server: TranscribeServer) -> None:
    reply = await stream_audio(signed(server, **{"user-agent": "my-app/1.0", "x-custom": "1"}), 1.0)
    assert reply.exception is None and reply.finals


async def test_vocabulary_filters_apply_by_name_and_unknown_names_are_refused() -> None:
    async with serve_in_background(config(vocabulary_filters={"noise": frozenset({"audio"})})) as server:
        masked = await stream_audio(
            signed(server, **{"vocabulary-filter-name": "noise", "vocabulary-filter-method": "mask"}), 1.0
        )
        missing = await stream_audio(
            signed(server, **{"vocabulary-filter-name": "other", "vocabulary-filter-method": "mask"}), 0.2
        )
    items = [
        json.loads(m["body"])["Transcript"]["Results"][0]["Alternatives"][0]["Items"]  # type: ignore[arg-type]
        for m in botocore_messages(masked)
    ]
    assert items and all(
        i["Content"] == "***" and i["VocabularyFilterMatch"] is True for group in items for i in group
    )
    assert (
        missing.exception is not None and "vocabulary filter couldn't be found" in missing.exception.message
    )


# --- frames ---------------------------------------------------------------------------------------


async def test_zero_length_binary_message_ends_the_stream_with_the_remaining_finals(
    server: TranscribeServer,
) -> None:
    async with open_stream(signed(server)) as ws:
        for _ in range(25):
            await ws.send(audio_event(CHUNK))
        await ws.send(b"")
        reply = await read_reply(ws)
    assert reply.close_code == 1000 and reply.exception is None
    assert reply.finals[-1].end == pytest.approx(2.5)  # the trailing half segment was flushed


async def test_per_frame_signed_envelopes_are_verified_and_an_empty_envelope_ends_the_stream(
    server: TranscribeServer,
) -> None:
    url = signed(server)
    signer = FrameSigner(KEY, url)
    async with open_stream(url) as ws:
        for _ in range(20):
            await ws.send(signer.envelope(audio_event(CHUNK)))
        await ws.send(signer.envelope(b""))
        reply = await read_reply(ws)
    assert reply.exception is None and reply.close_code == 1000
    assert sum(r.end - r.start for r in reply.finals) == pytest.approx(2.0)


async def test_an_open_server_unwraps_signed_envelopes_without_checking_them() -> None:
    async with serve_in_background(config(auth=False)) as server:
        url = presigned_url(server.endpoint, PARAMS, Credential("AKIDANYONE0000000000", "any-secret"))
        signer = FrameSigner(Credential("AKIDANYONE0000000000", "any-secret"), url)
        async with open_stream(url) as ws:
            for _ in range(20):
                await ws.send(signer.envelope(audio_event(CHUNK)))
            await ws.send(signer.envelope(b""))
            reply = await read_reply(ws)
    assert reply.exception is None and sum(r.end - r.start for r in reply.finals) == pytest.approx(2.0)


async def test_a_broken_signature_chain_ends_the_stream(server: TranscribeServer) -> None:
    url = signed(server)
    signer = FrameSigner(KEY, url)
    async with open_stream(url) as ws:
        await ws.send(signer.envelope(audio_event(CHUNK)))
        signer.envelope(audio_event(CHUNK))  # signed but never sent: the chain moves on without the server
        await ws.send(signer.envelope(audio_event(CHUNK)))
        reply = await read_reply(ws)
    assert reply.exception is not None and ":chunk-signature" in reply.exception.message


async def test_text_frame_is_an_unexpected_frame(server: TranscribeServer) -> None:
    async with open_stream(signed(server)) as ws:
        for _ in range(25):
            await ws.send(audio_event(CHUNK))
        await ws.send(json.dumps({"type": "end"}))
        reply = await read_reply(ws)
    assert reply.exception is not None
    assert (reply.exception.name, reply.exception.message) == (
        "BadRequestException",
        "Unexpected WebSocket frame received.",
    )
    assert reply.finals, "finals emitted while audio flowed reached the client"


async def test_chunk_over_one_second_is_refused(server: TranscribeServer) -> None:
    async with open_stream(signed(server)) as ws:
        await ws.send(audio_event(b"\x00" * 40000))
        reply = await read_reply(ws)
    assert reply.exception is not None and reply.exception.message.startswith("Your stream is too big")


def corrupt_crc(frame: bytes) -> bytes:
    return frame[:-4] + struct.pack(">I", zlib.crc32(frame[:-4]) ^ 1)


def huge_length() -> bytes:
    prelude = struct.pack(">II", 2**31, 0)
    return prelude + struct.pack(">I", zlib.crc32(prelude)) + b"\x00" * 16


@pytest.mark.parametrize(
    "hostile",
    [
        corrupt_crc(audio_event(CHUNK)),
        os.urandom(600),
        huge_length(),
        audio_event(CHUNK) + audio_event(CHUNK)[:20],
    ],
    ids=["bad-crc", "garbage", "huge-length", "trailing-bytes"],
)
async def test_hostile_frames_end_only_their_own_stream(server: TranscribeServer, hostile: bytes) -> None:
    async def hostile_stream() -> StreamReply:
        async with open_stream(signed(server)) as ws:
            await ws.send(audio_event(CHUNK))
            await ws.send(hostile)
            return await read_reply(ws)

    healthy, bad = await asyncio.gather(stream_audio(signed(server), 2.0), hostile_stream())
    assert bad.exception is not None and bad.exception.name == "BadRequestException"
    assert "Malformed event stream message" in bad.exception.message
    assert healthy.exception is None and healthy.close_code == 1000 and healthy.finals


async def test_a_flood_faster_than_real_time_is_stopped() -> None:
    async with serve_in_background(config(max_ahead_seconds=5.0)) as server:
        reply = await stream_audio(signed(server), 30.0, end=False)
    assert reply.exception is not None and reply.exception.message.startswith("Your stream is too big")


async def test_a_flood_of_tiny_frames_is_stopped() -> None:
    async with (
        serve_in_background(config(max_ahead_seconds=5.0)) as server,
        open_stream(signed(server)) as ws,
    ):
        tiny = audio_event(b"\x00\x00")
        with contextlib.suppress(ConnectionClosed):
            for _ in range(5000):
                await ws.send(tiny)
        reply = await read_reply(ws)
    assert reply.exception is not None and "frames in" in reply.exception.message


async def test_non_audio_events_are_refused(server: TranscribeServer) -> None:
    other = encode_message(
        {":message-type": "event", ":event-type": "ConfigurationEvent", ":content-type": "application/json"},
        b"{}",
    )
    async with open_stream(signed(server)) as ws:
        await ws.send(other)
        reply = await read_reply(ws)
    assert reply.exception is not None and "Unexpected event" in reply.exception.message


# --- timeouts and limits --------------------------------------------------------------------------


async def test_no_audio_for_the_idle_timeout_is_a_bad_request() -> None:
    async with serve_in_background(config(idle_timeout=1.0)) as server, open_stream(signed(server)) as ws:
        await ws.send(audio_event(CHUNK))
        reply = await read_reply(ws)
    assert reply.exception is not None
    assert (
        reply.exception.message == "Your request timed out because no new audio was received for 1 seconds."
    )


def test_default_idle_timeout_message_is_the_service_one() -> None:
    from beluga_voice.server.exceptions import idle_timeout_message

    assert idle_timeout_message(ServerConfig(auth=False).idle_timeout) == (
        "Your request timed out because no new audio was received for 15 seconds."
    )


async def test_maximum_stream_duration_is_a_limit_exceeded() -> None:
    async with (
        serve_in_background(config(max_stream_seconds=1.0)) as server,
        open_stream(signed(server)) as ws,
    ):
        with contextlib.suppress(ConnectionClosed):
            for _ in range(15):
                await ws.send(audio_event(CHUNK))
                await asyncio.sleep(0.1)
        reply = await read_reply(ws)
    assert reply.exception is not None and reply.exception.name == "LimitExceededException"


async def test_streams_over_the_concurrency_limit_are_refused() -> None:
    async with serve_in_background(config(max_streams=1)) as server, open_stream(signed(server)) as first:
        await first.send(audio_event(CHUNK))
        second = await stream_audio(signed(server), 0.2)
        assert second.exception is not None and second.exception.name == "LimitExceededException"
        await first.send(end_of_stream())
        assert (await read_reply(first)).exception is None


async def test_a_second_stream_with_the_same_session_id_ends_the_first(server: TranscribeServer) -> None:
    session = {"session-id": "9a0b4b3c-2d1e-4f5a-8b7c-6d5e4f3a2b1c"}
    async with open_stream(signed(server, **session)) as first:
        await first.send(audio_event(CHUNK))
        await asyncio.sleep(0.1)
        second = await stream_audio(signed(server, **session), 1.0)
        first_reply = await read_reply(first)
    assert first_reply.exception is not None and first_reply.exception.name == "ConflictException"
    assert second.exception is None


# --- faults ---------------------------------------------------------------------------------------


async def test_dropped_connection_fault_closes_without_a_close_frame() -> None:
    plan = FaultPlan(drop_after=0.5)
    async with serve_in_background(config(faults=plan)) as server, open_stream(signed(server)) as ws:
        await ws.send(audio_event(CHUNK))
        reply = await read_reply(ws)
    assert reply.close_code is None and reply.exception is None


async def test_exception_fault_sends_the_chosen_exception() -> None:
    plan = FaultPlan(exception_after=0.3, exception_name="ServiceUnavailableException")
    async with serve_in_background(config(faults=plan)) as server:
        reply = await stream_audio(signed(server), 0.5, end=False)
    assert reply.exception is not None and reply.exception.name == "ServiceUnavailableException"


async def test_refuse_fault_answers_the_upgrade_with_the_status_then_recovers() -> None:
    async with serve_in_background(config(faults=FaultPlan(refuse_status=503, streams=1))) as server:
        with pytest.raises(InvalidStatus) as refused:
            async with open_stream(signed(server)):
                pass
        assert refused.value.response.status_code == 503
        assert (await stream_audio(signed(server), 1.0)).exception is None


async def test_delay_fault_holds_results_back() -> None:
    async with serve_in_background(config(faults=FaultPlan(result_delay=1.0))) as server:
        loop = asyncio.get_running_loop()
        async with open_stream(signed(server)) as ws:
            started = loop.time()
            for _ in range(10):
                await ws.send(audio_event(CHUNK))
            await ws.recv()
            waited = loop.time() - started
            await ws.send(end_of_stream())
    assert waited >= 1.0


async def unanswered_ping(ws: ClientConnection, wait: float = 1.0) -> bool:
    """Whether a ping to the server goes without a pong for ``wait`` seconds."""
    pong = await ws.ping()
    try:
        await asyncio.wait_for(pong, wait)
    except TimeoutError:
        return True
    return False


async def test_a_stalled_stream_answers_no_ping_and_sends_nothing() -> None:
    stalling = config(faults=FaultPlan(stall_after=0.3), idle_timeout=10.0)
    async with serve_in_background(stalling) as server, open_stream(signed(server), ping_interval=None) as ws:
        assert not await unanswered_ping(ws)  # alive before the stall
        await asyncio.sleep(0.5)
        for _ in range(10):
            await ws.send(audio_event(CHUNK))  # a second of audio: the echo engine would answer it
        assert await unanswered_ping(ws)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 1.0)
        ws.transport.abort()


async def test_with_partials_off_only_finals_are_sent() -> None:
    async with serve_in_background(config(partials=False)) as server:
        quiet = await stream_audio(signed(server), 5.0)
    async with serve_in_background(config()) as server:
        usual = await stream_audio(signed(server), 5.0)
    assert any(r.is_partial for r in usual.results)
    assert quiet.results and all(r.is_final for r in quiet.results)
    assert quiet.text == usual.text and len(quiet.finals) == len(usual.finals) >= 2


async def test_random_faults_from_a_seed_hit_the_streams_the_plan_says() -> None:
    plan = FaultPlan(seed=11, random_rate=1.0, random_max_after=1.0)
    async with serve_in_background(config(faults=plan, idle_timeout=10.0)) as server:
        for number in range(5):
            expected = plan.for_stream(number)
            try:
                async with open_stream(signed(server), ping_interval=None) as ws:
                    with contextlib.suppress(ConnectionClosed):
                        for _ in range(20):  # 2 s at real time: every fault has the time to happen
                            await ws.send(audio_event(CHUNK))
                            await asyncio.sleep(0.1)
                        await ws.send(end_of_stream())
                    if expected.stall_after is not None:
                        assert await unanswered_ping(ws)
                        ws.transport.abort()
                        continue
                    reply = await read_reply(ws)
            except InvalidStatus as refused:
                assert refused.response.status_code == expected.refuse_status
                continue
            if expected.drop_after is not None:
                assert reply.close_code is None
            elif expected.exception is not None:
                assert reply.exception is not None and reply.exception.name == expected.exception.name
            else:
                assert expected.result_delay > 0 and reply.exception is None and reply.finals


def test_random_faults_are_reproducible_from_the_seed() -> None:
    plan = FaultPlan(seed=7, random_rate=0.8)
    draws = [plan.for_stream(n) for n in range(20)]
    assert draws == [FaultPlan(seed=7, random_rate=0.8).for_stream(n) for n in range(20)]
    assert any(d.any for d in draws) and not all(d.any for d in draws)
    assert not FaultPlan().enabled


# --- logging --------------------------------------------------------------------------------------


async def test_one_log_line_per_stream_without_secrets(
    server: TranscribeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="beluga_voice.server")
    url = signed(server, TEMP)
    await stream_audio(url, 1.0)
    await stream_audio(signed(server, Credential(KEY.access_key_id, "wrong")), 0.2)

    def stream_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("stream ")]

    for _ in range(50):  # the line is written once the server side has finished, just after the close
        if len(stream_lines()) >= 2:
            break
        await asyncio.sleep(0.02)
    lines = stream_lines()
    assert len(lines) == 2
    assert "audio=1.00s" in lines[0] and "outcome=completed" in lines[0] and "sample-rate=16000" in lines[0]
    assert "outcome=BadRequestException" in lines[1]
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (
        KEY.secret_access_key,
        TEMP.secret_access_key,
        TEMP.session_token or "",
        TEMP.access_key_id,
        signature,
    ):
        assert secret not in everything

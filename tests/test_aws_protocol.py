"""The sans-I/O client state machine: connection states, and one timeline across connections."""

from __future__ import annotations

import pytest

from beluga_voice.errors import ProtocolError, RateLimitError, StreamConnectionError
from beluga_voice.providers.aws_transcribe.eventstream import decode_message
from beluga_voice.providers.aws_transcribe.messages import (
    AudioChunk,
    classify,
    exception_event,
    transcript_event,
)
from beluga_voice.providers.aws_transcribe.protocol import (
    ConnectionProtocol,
    ConnectionState,
    TranscribeStream,
)
from beluga_voice.providers.aws_transcribe.transcript_json import transcript_event_payload
from beluga_voice.stt.model import TranscriptResult, Word

RATE = 16000
SECOND = RATE * 2


def result(text: str, start: float, end: float, *, partial: bool = False, rid: str = "r") -> TranscriptResult:
    words = tuple(
        Word(
            w,
            start + i * (end - start) / len(text.split()),
            start + (i + 1) * (end - start) / len(text.split()),
        )
        for i, w in enumerate(text.split())
    )
    return TranscriptResult(rid, partial, start, end, text, words)


def service(*results: TranscriptResult) -> bytes:
    return transcript_event(transcript_event_payload(results))


def test_a_connection_streams_ends_and_finishes_on_a_normal_close() -> None:
    connection = ConnectionProtocol()
    frame = connection.audio_frame(b"\x00\x01" * 1600)
    chunk = classify(decode_message(frame))
    assert isinstance(chunk, AudioChunk) and len(chunk.payload) == 3200
    end = classify(decode_message(connection.end_frame()))
    assert isinstance(end, AudioChunk) and end.is_end_of_stream
    assert connection.state is ConnectionState.ENDING
    assert connection.receive(service(result("late final", 0, 1))) == [result("late final", 0, 1)]
    assert connection.closed(1000) is None
    state: ConnectionState = connection.state
    assert state is ConnectionState.FINISHED
    assert (connection.stats.audio_bytes, connection.stats.finals) == (3200, 1)


def test_audio_after_the_end_and_empty_audio_chunks_are_refused() -> None:
    connection = ConnectionProtocol()
    with pytest.raises(ProtocolError, match="end the stream"):
        connection.audio_frame(b"")
    connection.end_frame()
    with pytest.raises(ProtocolError):
        connection.audio_frame(b"\x00\x00")


def test_a_close_before_the_end_of_audio_is_a_retryable_drop() -> None:
    connection = ConnectionProtocol()
    connection.audio_frame(b"\x00\x00")
    error = connection.closed(1006)
    assert isinstance(error, StreamConnectionError) and error.retryable
    assert connection.state is ConnectionState.FAILED


def test_an_exception_frame_fails_the_connection_with_its_typed_error() -> None:
    connection = ConnectionProtocol()
    with pytest.raises(RateLimitError):
        connection.receive(exception_event("LimitExceededException", "slow down"))
    assert isinstance(connection.closed(1000), RateLimitError)


def test_text_frames_and_broken_bytes_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="text frame"):
        ConnectionProtocol().receive('{"end": true}')
    frame = bytearray(service(result("x", 0, 1)))
    frame[-1] ^= 1
    with pytest.raises(ProtocolError):
        ConnectionProtocol().receive(bytes(frame))


def test_a_message_split_across_frames_is_reassembled() -> None:
    connection = ConnectionProtocol()
    frame = service(result("split", 0, 1))
    assert connection.receive(frame[:10]) == []
    assert connection.receive(frame[10:]) == [result("split", 0, 1)]


def test_pcm_is_sent_in_whole_frames_only() -> None:
    stream = TranscribeStream.for_pcm(RATE, channels=2)
    stream.connect()
    frame = stream.audio(b"\x00" * 4003)
    assert frame is not None and len(classify(decode_message(frame)).payload) == 4000  # type: ignore[union-attr]
    assert stream.audio(b"\x00\x00") is None  # half a stereo frame is nothing to send
    assert stream.timeline.media_time == pytest.approx(4000 / (RATE * 4))


# --- the timeline across connections (the ground reconnection stands on) ----------------------------


def test_one_connection_passes_results_through_on_the_media_timeline() -> None:
    stream = TranscribeStream.for_pcm(RATE)
    assert stream.connect() == []
    for _ in range(20):
        stream.audio(b"\x00" * 3200)
    assert stream.timeline.media_time == pytest.approx(2.0)
    got = stream.receive(service(result("a b", 0.2, 0.8, partial=True), result("a b c", 0.2, 1.1)))
    assert [r.text for r in got] == ["a b", "a b c"]
    assert got[1].start == 0.2


def test_audio_covered_by_finals_leaves_the_replay_buffer() -> None:
    stream = TranscribeStream.for_pcm(RATE)
    stream.connect()
    for _ in range(30):
        stream.audio(b"\x00" * 3200)  # 3 s
    assert stream.timeline.buffered_seconds == pytest.approx(3.0)
    stream.receive(service(result("first", 0.0, 1.25)))
    assert stream.timeline.buffered_seconds == pytest.approx(1.8)  # whole chunks after 1.2 s stay


def test_the_replay_buffer_is_bounded() -> None:
    stream = TranscribeStream.for_pcm(RATE, replay_seconds=1.0)
    stream.connect()
    for _ in range(50):
        stream.audio(b"\x00" * 3200)
    assert stream.timeline.buffered_seconds == pytest.approx(1.0)


def test_a_new_connection_replays_unfinalised_audio_and_continues_the_timeline() -> None:
    stream = TranscribeStream.for_pcm(RATE)
    stream.connect()
    chunks = [bytes([i]) * 3200 for i in range(30)]
    for chunk in chunks:
        stream.audio(chunk)
    delivered = stream.receive(service(result("one two", 0.0, 1.25)))
    assert isinstance(stream.closed(1006), StreamConnectionError)

    replay = stream.connect()
    # Whole chunks not yet covered by a final: from 1.2 s (the chunk holding 1.25 s) to the head.
    assert [classify(decode_message(f)).payload for f in replay] == chunks[12:]  # type: ignore[union-attr]
    assert stream.timeline.stats.replayed_seconds == pytest.approx(1.8)
    # The new connection's clock starts at the first replayed sample (1.2 s on the stream timeline).
    again = stream.receive(
        service(
            result("two", 0.0, 0.05, rid="dup"),  # the tail the old connection already delivered
            result("three four", 0.3, 1.4, rid="new"),
        )
    )
    assert [r.text for r in delivered + again] == ["one two", "three four"]
    assert again[0].start == pytest.approx(1.5) and again[0].end == pytest.approx(2.6)
    assert again[0].words[0].start == pytest.approx(1.5)
    assert stream.timeline.stats.duplicate_finals_dropped == 1


def test_a_final_straddling_what_was_delivered_keeps_only_the_new_words() -> None:
    stream = TranscribeStream.for_pcm(RATE)
    stream.connect()
    for _ in range(30):
        stream.audio(b"\x00" * 3200)
    stream.receive(service(result("alpha beta", 0.0, 1.0)))
    stream.closed(1006)
    stream.connect()  # replays from 1.0 s
    # The replay began mid-buffer at 1.0 s; pretend the service re-heard the tail of "beta".
    straddling = TranscriptResult(
        "s",
        False,
        -0.4,
        0.8,
        "beta gamma",
        (Word("beta", -0.4, 0.0), Word("gamma", 0.2, 0.8)),
    )
    (kept,) = stream.receive(service(straddling))
    assert kept.text == "gamma" and kept.start == pytest.approx(1.2)
    assert stream.timeline.stats.duplicate_finals_dropped == 0


def test_on_a_first_connection_touching_or_overlapping_segments_all_pass() -> None:
    stream = TranscribeStream.for_pcm(RATE)
    stream.connect()
    for _ in range(30):
        stream.audio(b"\x00" * 3200)
    first = stream.receive(service(result("one two", 0.0, 1.25)))
    overlapping = stream.receive(
        service(result("three", 1.2, 1.6, rid="b"), result("four", 1.0, 1.2, rid="c"))
    )
    assert [r.text for r in first + overlapping] == ["one two", "three", "four"]

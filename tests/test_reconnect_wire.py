"""Reconnection byte by byte, against the scripted fake Transcribe service (test_aws_fakes.py): what
each connection receives, what the application sees, and when the client stops trying."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from beluga_voice.audio import read_audio
from beluga_voice.errors import CredentialsError, ServiceError
from beluga_voice.providers.aws_transcribe import AWSTranscribeSTT, ReconnectPolicy, client
from beluga_voice.providers.aws_transcribe.messages import exception_event
from beluga_voice.stt.model import TranscriptResult, Word
from beluga_voice.stt.provider import ConnectionEvent
from test_aws_fakes import ACCESS_KEY, SECRET_KEY, FakeConnection, FakeTranscribe, final

SECOND = 32000
CHUNK = 3200
FAST = ReconnectPolicy(base_delay=0.01, max_delay=0.05, overlap_seconds=0.0)


@pytest.fixture(scope="module")
def speech(data_dir: Path) -> bytes:
    pcm = (
        read_audio(data_dir / "librivox/sense_and_sensibility_01_austen_64kb-0870.wav")
        .convert(16000)
        .to_pcm16()
    )
    return pcm[: 4 * SECOND]


def aws(fake: FakeTranscribe, **kwargs: Any) -> AWSTranscribeSTT:
    options: dict[str, Any] = {
        "credentials": (ACCESS_KEY, SECRET_KEY),
        "max_speed": 8.0,
        "drain_timeout": 5.0,
        "reconnect": FAST,
    }
    options.update(kwargs)
    return AWSTranscribeSTT(endpoint_url=fake.url, **options)


def per_connection(
    *scripts: Callable[[FakeConnection], Awaitable[None]],
) -> Callable[[FakeConnection], Awaitable[None]]:
    """Connection n plays ``scripts[n]`` (the last one for every later connection)."""
    count = 0

    async def script(conn: FakeConnection) -> None:
        nonlocal count
        count += 1
        await scripts[min(count, len(scripts)) - 1](conn)

    return script


async def finish_with_what_arrived(conn: FakeConnection) -> None:
    """A healthy connection: at the end of stream, one final per second of audio it received."""
    await conn.until_end()
    seconds = len(conn.received.audio) / SECOND
    words = [Word(f"w{i}", float(i), i + 0.9) for i in range(int(seconds))]
    if words:
        await conn.results(TranscriptResult("tail", False, 0.0, words[-1].end, "", tuple(words)))


async def collect(stt: AWSTranscribeSTT, audio: Any) -> tuple[list[TranscriptResult], list[ConnectionEvent]]:
    results: list[TranscriptResult] = []
    events: list[ConnectionEvent] = []
    async for result in stt.stream(audio, on_connection_event=events.append):
        results.append(result)
    return results, events


async def test_no_audio_goes_into_a_failed_stream_and_the_next_connection_gets_every_byte_after_the_cut(
    speech: bytes,
) -> None:
    after_failure: list[int] = []

    async def fails_but_keeps_listening(conn: FakeConnection) -> None:
        await conn.audio(1.0)
        await conn.results(final("one", 0.1, 0.45))
        await conn.ws.send(exception_event("InternalFailureException", "We had an internal problem."))
        count = len(conn.received.chunks)
        await asyncio.sleep(0.5)  # a careless client keeps sending into the failed stream
        after_failure.append(len(conn.received.chunks) - count)
        await conn.close()

    async with FakeTranscribe(per_connection(fails_but_keeps_listening, finish_with_what_arrived)) as fake:
        results, _ = await collect(aws(fake), [speech])
        first, second = fake.connections
    assert after_failure[0] <= 1  # at most a chunk already in flight when the exception arrived
    # The second connection starts with the chunk holding the end of the last final (0.45 s) and
    # then has every later byte once, in order: nothing swallowed at the switch, nothing repeated.
    origin = int(0.45 * SECOND) // CHUNK * CHUNK
    assert second.audio == speech[origin:]
    assert first.audio == speech[: len(first.audio)] and len(first.audio) > origin
    assert second.ended and not first.ended
    tail = results[-1]  # on the stream's timeline: the new connection's clock starts at the origin
    assert tail.words[1].start == pytest.approx(origin / SECOND + 1.0)
    assert tail.words[0].start == pytest.approx(0.45)  # cut by the failure: starts where delivery ended


async def test_a_partial_cut_by_the_failure_is_withdrawn_and_its_words_come_back_once(speech: bytes) -> None:
    async def cut_mid_word(conn: FakeConnection) -> None:
        await conn.audio(0.6)
        await conn.results(TranscriptResult("seg-1", True, 0.1, 0.5, "hel", (Word("hel", 0.1, 0.5),)))
        await conn.exception("ServiceUnavailableException", "Service is busy.")

    async def whole(conn: FakeConnection) -> None:
        await conn.until_end()
        await conn.results(final("hello world", 0.1, 1.0, result_id="seg-9"))

    async with FakeTranscribe(per_connection(cut_mid_word, whole)) as fake:
        results, events = await collect(aws(fake), [speech])
    assert [(r.result_id, r.is_partial, r.text) for r in results] == [
        ("seg-1", True, "hel"),
        ("seg-1", True, ""),  # withdrawn: a UI keyed by result id clears it
        ("seg-9", False, "hello world"),
    ]
    assert results[-1].start == pytest.approx(0.1)  # nothing was final: the replay starts at 0
    assert [e.kind for e in events] == ["connected", "disconnected", "reconnecting", "reconnected", "closed"]


async def test_speaker_numbers_restarted_by_a_new_connection_keep_their_names(speech: bytes) -> None:
    def said(rid: str, speaker: str, *spec: tuple[str, float, float]) -> TranscriptResult:
        words = tuple(Word(t, s, e, speaker=speaker) for t, s, e in spec)
        return TranscriptResult(
            rid, False, words[0].start, words[-1].end, " ".join(w.text for w in words), words
        )

    async def two_voices(conn: FakeConnection) -> None:
        await conn.audio(2.2)
        await conn.results(
            said("a", "0", ("hi", 0.1, 0.5)), said("b", "1", ("hello", 1.2, 1.6), ("there", 1.6, 2.0))
        )
        await conn.exception("InternalFailureException", "oops")

    async def renumbered(conn: FakeConnection) -> None:
        # The replay starts 1.5 s before the last final (1.0 s on the stream): voice "1" is now "0".
        await conn.until_end()
        await conn.results(
            said("c", "0", ("hello", 0.2, 0.6), ("there", 0.6, 1.0)),
            said("d", "0", ("again", 1.3, 1.7)),
            said("e", "1", ("bye", 2.0, 2.4)),
        )

    async with FakeTranscribe(per_connection(two_voices, renumbered)) as fake:
        stt = aws(
            fake, show_speaker_label=True, reconnect=ReconnectPolicy(base_delay=0.01, overlap_seconds=1.5)
        )
        results, _ = await collect(stt, [speech])
    assert [(r.text, r.speaker) for r in results] == [
        ("hi", "0"),
        ("hello there", "1"),
        ("again", "1"),
        ("bye", "0"),
    ]


async def test_a_configured_session_id_is_used_once_and_every_reconnection_gets_a_new_one(
    speech: bytes,
) -> None:
    session = "0f8fad5b-d9cb-469f-a165-70867728950e"

    async def drops(conn: FakeConnection) -> None:
        await conn.audio(0.5)
        conn.ws.transport.abort()

    async with FakeTranscribe(per_connection(drops, drops, finish_with_what_arrived)) as fake:
        await collect(aws(fake, session_id=session), [speech])
        ids = [c.params["session-id"] for c in fake.connections]
    assert ids[0] == session and len(set(ids)) == 3


async def test_a_service_that_only_repeats_replayed_results_is_given_up(speech: bytes) -> None:
    async def flapping(conn: FakeConnection) -> None:
        await conn.audio(0.3)
        await conn.results(final("before", 0.0, 0.3))
        await conn.exception("ServiceUnavailableException", "Service is busy.")

    got: list[TranscriptResult] = []
    async with FakeTranscribe(flapping) as fake:
        with pytest.raises(ServiceError):
            # With an overlap the replay starts before "before": each new connection only repeats it.
            policy = ReconnectPolicy(max_attempts=3, base_delay=0.01, overlap_seconds=1.0)
            async for result in aws(fake, reconnect=policy).stream([speech]):
                got.append(result)
    # The first connection made progress; the next three only repeated it: one outage, three attempts.
    assert fake.attempts == 4 and [r.text for r in got] == ["before"]


async def test_a_service_that_never_closes_after_the_end_is_replaced_and_owes_nothing(speech: bytes) -> None:
    async def never_closes(conn: FakeConnection) -> None:
        await conn.until_end()
        await conn.results(final("kept", 0.0, 1.0))
        await conn.ws.wait_closed()

    async with FakeTranscribe(per_connection(never_closes, finish_with_what_arrived)) as fake:
        results, events = await collect(aws(fake, drain_timeout=0.3), [speech])
        replayed = fake.connections[1].audio
    assert results[0].text == "kept"
    assert replayed == speech[SECOND:]  # only the audio the first connection never finalised
    assert "after the end of the audio" in str(next(e.error for e in events if e.kind == "disconnected"))


async def test_wrong_credentials_refused_by_an_exception_frame_are_one_attempt(speech: bytes) -> None:
    async with FakeTranscribe(auth_failure="frame") as fake:
        with pytest.raises(CredentialsError):
            await aws(fake, credentials=(ACCESS_KEY, "not-the-secret-key-0123456789abcdefghijk")).transcribe(
                speech
            )
    assert fake.attempts == 1


async def test_connections_cut_before_any_final_hold_the_source_and_lose_no_audio(speech: bytes) -> None:
    async def answers_then_fails(conn: FakeConnection) -> None:
        await conn.audio(1.0)
        await conn.results(final("one", 0.1, 0.45))
        await conn.exception("InternalFailureException", "We had an internal problem.")

    async def cut_before_any_final(conn: FakeConnection) -> None:
        await asyncio.sleep(0.4)  # 3.2 s of audio at 8x: more than the 2 s buffer
        conn.ws.transport.abort()

    script = per_connection(
        answers_then_fails, cut_before_any_final, cut_before_any_final, finish_with_what_arrived
    )
    policy = ReconnectPolicy(base_delay=0.01, max_delay=0.05, healthy_after=2.0)
    async with FakeTranscribe(script) as fake:
        stt = aws(fake, replay_seconds=2.0, reconnect=policy)
        await collect(stt, [speech])
        last = fake.connections[-1]
    stats = stt.last_stream_stats
    assert stats is not None and len(fake.connections) == 4
    # The connections that never answered could not let audio leave the 2 s buffer: the source
    # waited, and the last connection got every byte after the last final, once, in order.
    origin = int(0.45 * SECOND) // CHUNK * CHUNK
    assert last.audio == speech[origin:]
    assert stats.lost_seconds == 0 and stats.held_seconds > 0
    assert all(len(c.audio) <= 2 * SECOND + CHUNK for c in fake.connections[1:3])  # bounded memory


async def test_a_connection_fed_ahead_of_the_service_keeps_what_it_has_not_answered(speech: bytes) -> None:
    async def lags_then_drops(conn: FakeConnection) -> None:
        await conn.audio(0.5)
        await conn.results(final("one", 0.1, 0.45))
        await asyncio.sleep(0.5)  # 4 s of audio fed at 8x, answered by nothing: more than the 1 s buffer
        conn.ws.transport.abort()

    async with FakeTranscribe(per_connection(lags_then_drops, finish_with_what_arrived)) as fake:
        stt = aws(fake, replay_seconds=1.0)
        await collect(stt, [speech])
        replayed = fake.connections[1].audio
    stats = stt.last_stream_stats
    # No outage yet, and the connection was healthy; but it had been sent audio faster than real time,
    # which the service may not have read: it stayed in the buffer (the source waited) and was replayed.
    origin = int(0.45 * SECOND) // CHUNK * CHUNK
    assert replayed == speech[origin:]
    assert stats is not None and stats.lost_seconds == 0 and stats.held_seconds > 0


async def test_a_hold_never_starves_the_live_connection(
    speech: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scaled down: a service that ends a stream after STARVING_HOLD + a margin of no audio. A replay of
    # audio the service never answers (music) must keep flowing, not stop for the whole outage check.
    monkeypatch.setattr(client, "STARVING_HOLD", 0.5)
    longest_gap = 0.0

    async def fails_unanswered(conn: FakeConnection) -> None:
        await conn.audio(2.5)
        await conn.exception("InternalFailureException", "We had an internal problem.")

    async def listens_never_answers(conn: FakeConnection) -> None:
        nonlocal longest_gap
        loop, heard = asyncio.get_running_loop(), 0
        last = loop.time()

        def more(heard: int) -> Callable[[], bool]:
            return lambda: len(conn.received.audio) > heard or conn.received.ended

        while not conn.received.ended:
            async with conn.changed:
                await conn.changed.wait_for(more(heard))
            heard, now = len(conn.received.audio), loop.time()
            longest_gap, last = max(longest_gap, now - last), now
        await finish_with_what_arrived(conn)

    policy = ReconnectPolicy(base_delay=0.01, max_delay=0.05, healthy_after=5.0)
    async with FakeTranscribe(per_connection(fails_unanswered, listens_never_answers)) as fake:
        stt = aws(fake, replay_seconds=2.0, reconnect=policy)
        await collect(stt, [speech])
        second = fake.connections[1].audio
    stats = stt.last_stream_stats
    assert stats is not None and stats.connections == 2 and stats.held_seconds > 0
    # Held for the outage check (5 s here), the connection would have gone that long without audio.
    assert longest_gap < 2.0
    assert (
        second == speech[len(speech) - len(second) :] and len(second) >= 2 * SECOND
    )  # the replay, then the rest

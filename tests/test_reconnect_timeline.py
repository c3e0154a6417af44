"""The timeline across connections, sans-I/O: replay with overlap, keep-alive gaps, duplicate words,
retractions, speaker labels and what an outage longer than the buffer costs."""

from __future__ import annotations

import pytest

from beluga_voice.errors import ConfigurationError
from beluga_voice.stt.model import TranscriptResult, Word
from beluga_voice.stt.speakers import SpeakerMap
from beluga_voice.stt.timeline import MAX_VOICES, VOICE_GAP_SECONDS, StreamTimeline

RATE = 16000
BPS = RATE * 2
CHUNK = 3200  # 100 ms


def words(*spec: tuple[str, float, float]) -> tuple[Word, ...]:
    return tuple(Word(text, start, end) for text, start, end in spec)


def final(rid: str, *spec: tuple[str, float, float], speaker: str | None = None) -> TranscriptResult:
    ws = tuple(Word(t, s, e, speaker=speaker) for t, s, e in spec)
    return TranscriptResult(rid, False, ws[0].start, ws[-1].end, " ".join(w.text for w in ws), ws)


def partial(rid: str, *spec: tuple[str, float, float]) -> TranscriptResult:
    ws = words(*spec)
    return TranscriptResult(rid, True, ws[0].start, ws[-1].end, " ".join(w.text for w in ws), ws)


def feed(timeline: StreamTimeline, seconds: float) -> None:
    for _ in range(round(seconds * 10)):
        timeline.record(b"\x01\x00" * (CHUNK // 2))


def test_a_reconnection_replays_the_overlap_and_delivers_only_new_words() -> None:
    timeline = StreamTimeline(BPS, replay_seconds=30, overlap_seconds=1.0)
    timeline.begin_connection()
    feed(timeline, 5.0)
    delivered = timeline.place([final("a", ("he", 0.5, 0.8), ("was", 0.8, 1.2), ("not", 1.2, 2.0))])
    assert [r.text for r in delivered] == ["he was not"]
    # 1 s of overlap before the last final's end (2.0 s) stays for the next connection.
    replay = timeline.begin_connection()
    assert len(b"".join(replay)) == 4 * BPS and timeline.clock.origin == pytest.approx(1.0)
    # The new connection re-hears "was not" (times on its own clock, from 1.0 s) and goes on.
    again = timeline.place(
        [final("b", ("was", 0.0, 0.2), ("not", 0.2, 1.05), ("an", 1.1, 1.3), ("ill", 1.3, 1.6))]
    )
    assert [r.text for r in again] == ["an ill"]
    assert again[0].start == pytest.approx(2.1) and again[0].words[-1].end == pytest.approx(2.6)
    assert timeline.stats.duplicate_words_dropped == 2


def test_a_re_decoded_word_with_later_times_is_still_the_same_word() -> None:
    timeline = StreamTimeline(BPS, overlap_seconds=0.5)
    timeline.begin_connection()
    feed(timeline, 4.0)
    timeline.place([final("a", ("young", 1.0, 1.4), ("man", 1.4, 1.8))])
    timeline.begin_connection()  # from 1.3 s
    # "man" comes back at 1.6-2.1 s: its midpoint is past the cut, but it overlaps the delivered "man".
    (kept,) = timeline.place([final("b", ("man", 0.3, 0.8), ("unless", 0.9, 1.3))])
    assert kept.text == "unless"


def test_a_word_said_twice_is_delivered_twice() -> None:
    timeline = StreamTimeline(BPS, overlap_seconds=0.5)
    timeline.begin_connection()
    feed(timeline, 4.0)
    timeline.place([final("a", ("five", 1.0, 1.4))])
    timeline.begin_connection()  # from 0.9 s
    (kept,) = timeline.place([final("b", ("five", 0.1, 0.5), ("five", 0.55, 0.9))])
    assert [w.text for w in kept.words] == ["five"] and kept.start == pytest.approx(1.45)


def test_a_word_said_twice_survives_a_re_decode_that_moves_it_onto_the_first() -> None:
    timeline = StreamTimeline(BPS, overlap_seconds=1.0)
    timeline.begin_connection()
    feed(timeline, 4.0)
    timeline.place([final("a", ("of", 0.6, 1.0), ("five", 1.2, 2.0))])  # the cut came after one "five"
    timeline.begin_connection()  # from 1.0 s
    # The replay hears "five five"; the second one is decoded early, overlapping the delivered one.
    (kept,) = timeline.place([final("b", ("five", 0.2, 0.9), ("five", 0.9, 1.4))])
    assert [w.text for w in kept.words] == ["five"] and kept.start == pytest.approx(2.0)


def test_a_word_cut_by_the_failure_starts_where_delivery_ended() -> None:
    timeline = StreamTimeline(BPS)
    timeline.begin_connection()
    feed(timeline, 3.0)
    timeline.place([final("a", ("one", 0.2, 1.0))])
    timeline.begin_connection()  # replays from the chunk holding 1.0 s
    (kept,) = timeline.place([final("b", ("two", -0.05, 0.4))])  # begun just before the cut
    assert kept.start == pytest.approx(1.0) and kept.words[0].start == pytest.approx(1.0)
    assert kept.words[0].end == pytest.approx(1.4)


def test_keepalive_silence_is_not_on_the_application_timeline() -> None:
    timeline = StreamTimeline(BPS)
    timeline.begin_connection()
    feed(timeline, 1.0)
    timeline.insert_silence(2.0)  # the application paused; the connection heard 2 s of silence
    feed(timeline, 1.0)
    (result,) = timeline.place([final("a", ("before", 0.5, 0.9), ("inside", 1.5, 2.5), ("after", 3.2, 3.6))])
    assert [(w.start, w.end) for w in result.words] == [
        pytest.approx((0.5, 0.9)),
        pytest.approx((1.0, 1.0)),  # within the silence: the point where it was inserted
        pytest.approx((1.2, 1.6)),
    ]
    assert timeline.media_time == pytest.approx(2.0)


def test_keepalive_gaps_and_a_replay_origin_combine() -> None:
    timeline = StreamTimeline(BPS)
    timeline.begin_connection()
    feed(timeline, 2.0)
    timeline.place([final("a", ("one", 0.2, 1.0))])
    timeline.begin_connection()  # origin 1.0 s, 1 s replayed
    timeline.insert_silence(0.5)  # after the replay
    feed(timeline, 1.0)
    (result,) = timeline.place([final("b", ("two", 1.6, 2.0))])  # connection time, past the silence
    assert (result.start, result.end) == pytest.approx((2.1, 2.5))


def test_unfinished_partials_of_a_failed_connection_are_withdrawn() -> None:
    timeline = StreamTimeline(BPS)
    timeline.begin_connection()
    feed(timeline, 3.0)
    timeline.place([partial("p1", ("hello", 0.2, 0.6)), partial("p2", ("wor", 1.0, 1.2))])
    timeline.place([final("p1", ("hello", 0.2, 0.6))])
    (retraction,) = timeline.abandon_connection()
    assert (retraction.result_id, retraction.is_partial, retraction.text, retraction.words) == (
        "p2",
        True,
        "",
        (),
    )
    assert timeline.abandon_connection() == [] and timeline.stats.retracted_partials == 1


def test_speaker_labels_of_a_new_connection_follow_the_overlap() -> None:
    timeline = StreamTimeline(BPS, overlap_seconds=2.0)
    timeline.begin_connection()
    feed(timeline, 6.0)
    timeline.place(
        [
            final("a", ("hi", 0.2, 0.6), speaker="0"),
            final("b", ("hello", 2.2, 2.8), ("there", 2.8, 3.5), speaker="1"),
        ]
    )
    timeline.begin_connection()  # from 1.5 s: the overlap holds speaker "1"'s words
    # The new connection calls that voice "0" and a new voice "1".
    out = timeline.place(
        [
            final("c", ("hello", 0.7, 1.3), ("there", 1.3, 2.0), speaker="0"),
            final("d", ("again", 2.2, 2.6), speaker="0"),
            final("e", ("bye", 3.0, 3.4), speaker="1"),
        ]
    )
    assert [(r.text, r.speaker) for r in out] == [("again", "1"), ("bye", "0")]


def test_speaker_map_without_evidence_keeps_names_and_never_merges_two_labels() -> None:
    first = SpeakerMap(identity=True)
    assert first.resolve("7") == "7"
    later = SpeakerMap(identity=False)
    later.observe("0", "1", 0.5)
    later.observe("0", "0", 0.1)
    assert later.resolve("0") == "1"
    later.observe("0", "2", 9.0)  # fixed once used: a speaker never changes name mid-stream
    assert later.resolve("0") == "1"
    assert later.resolve("2") == "2"
    assert later.resolve("1") == "0"  # its own name is taken: the lowest free one


def test_an_outage_longer_than_the_buffer_is_counted_as_lost_audio() -> None:
    timeline = StreamTimeline(BPS, replay_seconds=1.0)
    timeline.begin_connection()
    feed(timeline, 3.0)
    assert timeline.buffer_full(1)  # one more byte would push unanswered audio out
    replay = timeline.begin_connection()
    assert len(b"".join(replay)) == BPS
    assert timeline.stats.lost_seconds == pytest.approx(2.0)
    timeline.begin_connection()  # the same gap is not counted twice
    assert timeline.stats.lost_seconds == pytest.approx(2.0)


def test_overlap_must_fit_in_the_buffer() -> None:
    with pytest.raises(ConfigurationError, match="overlap_seconds"):
        StreamTimeline(BPS, replay_seconds=2.0, overlap_seconds=2.0)


def test_a_new_connection_first_hears_every_known_speaker_and_maps_their_labels() -> None:
    timeline = StreamTimeline(BPS, overlap_seconds=0.5, voice_seconds=2.0)
    timeline.begin_connection()
    for i in range(80):  # 8 s; each chunk's bytes say which 100 ms it is
        timeline.record(bytes([i]) * CHUNK)
    timeline.place(
        [
            final("a", ("good", 0.5, 1.0), ("morning", 1.0, 2.0), speaker="0"),
            final("b", ("hello", 3.0, 3.6), ("there", 3.6, 4.0), ("friend", 4.0, 5.5), speaker="1"),
        ]
    )
    replay = timeline.begin_connection()
    samples = b"".join(replay)[: -3 * BPS]  # the buffer (5.0-8.0 s: the overlap and after) comes last
    gap = VOICE_GAP_SECONDS
    # Speaker "0": 0.5-2.0 s (1.5 s), then silence; speaker "1": the last 2 s of 3.0-5.5 s.
    assert samples[: int(1.5 * BPS)] == b"".join(bytes([i]) * CHUNK for i in range(5, 20))
    assert samples[int(1.5 * BPS) : int((1.5 + gap) * BPS)] == bytes(int(gap * BPS))
    second = int((1.5 + gap) * BPS)
    assert samples[second : second + 2 * BPS] == b"".join(bytes([i]) * CHUNK for i in range(35, 55))
    lead = 3.5 + 2 * gap
    assert timeline.clock.lead == pytest.approx(lead)
    assert timeline.stats.voice_sample_seconds == pytest.approx(lead)
    # The new connection numbers them the other way round; what it hears in the samples is never
    # delivered, and its later words carry the stream's labels.
    out = timeline.place(
        [
            final("s1", ("morning", 0.5, 1.4), speaker="1"),
            final("s2", ("friend", 2.6, 3.4), speaker="0"),
            final("n1", ("bye", lead + 1.0, lead + 1.4), speaker="0"),  # 1 s into the replay: 6.0 s
            final("n2", ("see", lead + 2.0, lead + 2.3), speaker="1"),
        ]
    )
    assert [(r.text, r.speaker) for r in out] == [("bye", "1"), ("see", "0")]
    assert [r.start for r in out] == pytest.approx([6.0, 7.0])


def test_speaker_map_gives_each_voice_to_its_strongest_evidence_whichever_label_comes_first() -> None:
    later = SpeakerMap(identity=False, reserved={"A", "B"})
    later.observe("1", "A", 1.0)  # a little of voice A's sample was heard as "1"...
    later.observe("1", "B", 0.6)
    later.observe("0", "A", 6.0)  # ...but "0" is clearly voice A
    assert later.resolve("1") == "B"  # delivered first, yet it does not take A from "0"
    assert later.resolve("0") == "A"
    # A voice no sample had is a new speaker: it never takes a sampled speaker's name.
    assert later.resolve("A") not in {"A", "B"}


def test_a_speakers_sample_is_a_clear_run_not_their_last_short_word() -> None:
    timeline = StreamTimeline(BPS, voice_seconds=2.0)
    timeline.begin_connection()
    for i in range(60):
        timeline.record(bytes([i]) * CHUNK)
    timeline.place(
        [
            final("a", ("good", 0.5, 1.0), ("morning", 1.0, 2.5), speaker="0"),
            final("b", ("hello", 3.0, 4.2), speaker="1"),
            final("c", ("yes", 4.5, 5.6), speaker="0"),  # shorter than the sample kept for "0"
        ]
    )
    replay = b"".join(timeline.begin_connection())
    # "1" (heard before "0"'s last word) comes first; "0" keeps its 2 s of "good morning".
    first = int(1.2 * BPS)
    second = first + int(VOICE_GAP_SECONDS * BPS)
    assert replay[:first] == b"".join(bytes([i]) * CHUNK for i in range(30, 42))
    assert replay[second : second + 2 * BPS] == b"".join(bytes([i]) * CHUNK for i in range(5, 25))
    assert timeline.stats.voice_sample_seconds == pytest.approx(3.2 + 2 * VOICE_GAP_SECONDS)


def test_samples_are_bounded_to_the_most_recent_speakers() -> None:
    timeline = StreamTimeline(BPS, voice_seconds=1.0)
    timeline.begin_connection()
    feed(timeline, MAX_VOICES + 3.0)
    timeline.place(
        [final(f"r{n}", (f"w{n}", n + 0.1, n + 1.1), speaker=str(n)) for n in range(MAX_VOICES + 2)]
    )
    timeline.begin_connection()
    assert timeline.stats.voice_sample_seconds == pytest.approx(MAX_VOICES * (1.0 + VOICE_GAP_SECONDS))

"""Serializers: every format written from real reference transcripts and parsed back."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from beluga_voice.errors import ConfigurationError
from beluga_voice.stt.model import (
    Alternative,
    Entity,
    LanguageScore,
    SpeakerTurn,
    Transcript,
    TranscriptResult,
    Word,
)
from beluga_voice.stt.serializers import (
    FORMATS,
    MAX_CUE_SECONDS,
    MAX_LINE_CHARS,
    MIN_CUE_SECONDS,
    result_to_dict,
    serialize,
    subtitle_cues,
    to_json,
    to_jsonl,
    to_jsonl_line,
    to_rttm,
    to_srt,
    to_text,
    to_vtt,
)

# --- reference transcripts -------------------------------------------------------------------------


@dataclass(frozen=True)
class StmLine:
    speaker: str
    start: float
    end: float
    text: str


def read_stm(path: Path) -> list[StmLine]:
    lines = []
    for raw in path.read_text().splitlines():
        _file, _channel, speaker, start, end, text = raw.split(maxsplit=5)
        lines.append(StmLine(speaker, float(start), float(end), text))
    return lines


def stm_transcript(lines: list[StmLine]) -> Transcript:
    """A transcript as a diarizing provider would return it: one final per STM line, word times spread
    evenly over the line, punctuation as separate unlabelled items (Transcribe's convention)."""
    transcript = Transcript(provider="reference", duration=30.0, language_code="en-US")
    for n, line in enumerate(lines):
        tokens = re.findall(r"[\w']+|[^\w\s]", line.text)
        spoken = [t for t in tokens if re.match(r"[\w']", t)]
        step = (line.end - line.start) / len(spoken)
        words: list[Word] = []
        i = 0
        for token in tokens:
            if re.match(r"[\w']", token):
                start = line.start + i * step
                words.append(Word(token, start, start + step * 0.9, 0.9, line.speaker))
                i += 1
            else:
                words.append(Word(token, words[-1].end, words[-1].end, None, None, is_punctuation=True))
        transcript.add(
            TranscriptResult(
                f"r{n}", False, line.start, line.end, line.text, tuple(words), language_code="en-US"
            )
        )
    return transcript


@pytest.fixture(scope="module")
def stm(data_dir: Path) -> list[StmLine]:
    return read_stm(data_dir / "pyannote" / "sample.stm")


@pytest.fixture(scope="module")
def call(stm: list[StmLine]) -> Transcript:
    return stm_transcript(stm)


def speaker_turns(stm: list[StmLine]) -> list[tuple[str, str]]:
    """Consecutive lines of one speaker joined: what a reader of the transcript expects to see."""
    turns: list[tuple[str, str]] = []
    for line in stm:
        if turns and turns[-1][0] == line.speaker:
            turns[-1] = (line.speaker, f"{turns[-1][1]} {line.text}")
        else:
            turns.append((line.speaker, line.text))
    return turns


# --- independent parsers for the subtitle and RTTM formats ------------------------------------------


@dataclass(frozen=True)
class ParsedCue:
    start: float
    end: float
    lines: list[str]


def parse_time(stamp: str, separator: str) -> float:
    match = re.fullmatch(rf"(\d{{2,}}):(\d{{2}}):(\d{{2}}){re.escape(separator)}(\d{{3}})", stamp)
    assert match, f"bad timestamp {stamp!r}"
    h, m, s, ms = (int(g) for g in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000


def parse_srt(text: str) -> list[ParsedCue]:
    assert not text.startswith("\n") and text.endswith("\n")
    cues = []
    for number, block in enumerate(text.strip("\n").split("\n\n"), start=1):
        index, times, *lines = block.split("\n")
        assert index == str(number), "SRT cues are numbered from 1 without gaps"
        start, arrow, end = times.split(" ")
        assert arrow == "-->"
        assert lines and all(line.strip() for line in lines), "an SRT cue needs non-blank text lines"
        cues.append(ParsedCue(parse_time(start, ","), parse_time(end, ","), lines))
    return cues


def parse_vtt(text: str) -> list[ParsedCue]:
    header, *blocks = text.strip("\n").split("\n\n")
    assert header == "WEBVTT"
    cues = []
    for block in blocks:
        times, *lines = block.split("\n")
        start, arrow, end = times.split(" ")
        assert arrow == "-->"
        assert lines and all(line.strip() for line in lines)
        cues.append(ParsedCue(parse_time(start, "."), parse_time(end, "."), lines))
    return cues


def vtt_voice(cue: ParsedCue) -> tuple[str | None, str]:
    """The cue's speaker (``<v name>``) and its unescaped text."""
    body = " ".join(cue.lines)
    match = re.match(r"<v ([^>]+)>(.*)", body)
    speaker, body = (match.group(1), match.group(2)) if match else (None, body)
    assert "<" not in body and ">" not in body
    return (None if speaker is None else unescape(speaker)), unescape(body)


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def srt_voice(cue: ParsedCue, speakers: set[str]) -> tuple[str | None, str]:
    body = " ".join(cue.lines)
    label, sep, rest = body.partition(": ")
    return (label, rest) if sep and label in speakers else (None, body)


@dataclass(frozen=True)
class Turn:
    file_id: str
    channel: int
    start: float
    duration: float
    speaker: str


def parse_rttm(text: str) -> list[Turn]:
    turns = []
    for line in text.splitlines():
        fields = line.split()
        assert len(fields) == 10 and fields[0] == "SPEAKER", line
        assert fields[5] == fields[6] == fields[8] == fields[9] == "<NA>"
        turns.append(Turn(fields[1], int(fields[2]), float(fields[3]), float(fields[4]), fields[7]))
    return turns


def group_cues(voiced: list[tuple[str | None, str]]) -> list[tuple[str | None, str]]:
    grouped: list[tuple[str | None, str]] = []
    for speaker, text in voiced:
        if grouped and grouped[-1][0] == speaker:
            grouped[-1] = (speaker, f"{grouped[-1][1]} {text}")
        else:
            grouped.append((speaker, text))
    return grouped


# --- text and JSON ---------------------------------------------------------------------------------


def test_text_has_one_line_per_speaker_turn_with_its_label(call: Transcript, stm: list[StmLine]) -> None:
    expected = "".join(f"{speaker}: {text}\n" for speaker, text in speaker_turns(stm))
    assert to_text(call) == expected


def test_text_without_speakers_is_one_line_per_result() -> None:
    transcript = Transcript("p")
    transcript.add(TranscriptResult("a", False, 0.0, 1.0, "Hello there."))
    transcript.add(TranscriptResult("b", False, 2.0, 3.0, "  General\nKenobi. "))
    assert to_text(transcript) == "Hello there.\nGeneral Kenobi.\n"
    assert to_text(Transcript("p")) == ""


def test_json_is_the_documented_schema(call: Transcript, stm: list[StmLine]) -> None:
    document = json.loads(to_json(call))
    assert document == call.to_dict()
    assert set(document) == {"provider", "duration", "language_code", "text", "segments", "speaker_turns"}
    assert document["provider"] == "reference" and document["duration"] == 30.0
    segment_keys = {"start", "end", "speaker", "channel", "language_code", "text", "words"}
    word_keys = {"text", "start", "end", "confidence", "speaker"}
    assert [(s["speaker"], s["text"]) for s in document["segments"]] == speaker_turns(stm)
    for segment in document["segments"]:
        assert set(segment) == segment_keys
        assert segment["channel"] is None, "unknown values are null, not missing"
        for word in segment["words"]:
            assert set(word) == word_keys
            assert segment["start"] <= word["start"] <= word["end"] <= segment["end"] + 1e-9


def full_result() -> TranscriptResult:
    words = (
        Word("Call", 1.25, 1.5, 0.99, "spk_1", True),
        Word("Zoë", 1.5, 1.9, 0.5, "spk_1", False, vocabulary_filter_match=True),
        Word("at", 2.0, 2.1, None, "spk_1", None),
        Word("555-0100", 2.1, 2.9, 0.8, "spk_1", None),
        Word(".", 2.9, 2.9, None, None, None, is_punctuation=True),
    )
    entity = Entity("PII", "PHONE", "555-0100", 2.1, 2.9, 0.97)
    return TranscriptResult(
        result_id="7f0c-ü",
        is_partial=True,
        start=1.25,
        end=2.9,
        text="Call Zoë at 555-0100.",
        words=words,
        channel="ch_1",
        language_code="en-GB",
        language_scores=(LanguageScore("en-GB", 0.8), LanguageScore("en-US", 0.2)),
        entities=(entity,),
        alternatives=(Alternative("Call Joe at 555-0100.", words[:1], (entity,)),),
    )


def result_from_dict(data: dict[str, Any]) -> TranscriptResult:
    def word(w: dict[str, Any]) -> Word:
        return Word(**w)

    def entity(e: dict[str, Any]) -> Entity:
        return Entity(**e)

    return TranscriptResult(
        result_id=data["result_id"],
        is_partial=data["is_partial"],
        start=data["start"],
        end=data["end"],
        text=data["text"],
        words=tuple(word(w) for w in data["words"]),
        channel=data["channel"],
        language_code=data["language_code"],
        language_scores=tuple(LanguageScore(**s) for s in data["language_scores"]),
        entities=tuple(entity(e) for e in data["entities"]),
        alternatives=tuple(
            Alternative(
                a["text"], tuple(word(w) for w in a["words"]), tuple(entity(e) for e in a["entities"])
            )
            for a in data["alternatives"]
        ),
    )


def test_jsonl_line_keeps_every_field_of_a_result() -> None:
    result = full_result()
    line = to_jsonl_line(result)
    assert line.endswith("\n") and line.count("\n") == 1, "one event, one line"
    data = json.loads(line)
    assert result_from_dict(data) == result
    assert data["speaker"] == "spk_1"
    assert "Zoë" in line, "text stays readable UTF-8"


def test_jsonl_of_many_results_is_one_parseable_line_each(call: Transcript) -> None:
    lines = to_jsonl(call.results).splitlines()
    assert len(lines) == len(call.results)
    parsed = [result_from_dict(json.loads(line)) for line in lines]
    assert [(r.result_id, r.text, r.speaker) for r in parsed] == [
        (r.result_id, r.text, r.speaker) for r in call.results
    ]
    for back, original in zip(parsed, call.results, strict=True):
        assert [w.start for w in back.words] == pytest.approx([w.start for w in original.words], abs=5e-4)
    assert result_to_dict(call.results[0])["is_partial"] is False


def test_times_are_written_in_milliseconds() -> None:
    word = Word("x", 8.129999999999999, 8.3300000001, speaker="0")
    transcript = Transcript("p", duration=29.999999999)
    transcript.add(TranscriptResult("a", False, word.start, word.end, "x", (word,)))
    line = to_jsonl_line(transcript.results[0])
    assert '"start":8.13,' in line and '"end":8.33,' in line
    document = to_json(transcript)
    assert "8.129999" not in document and '"duration": 30.0' in document


def test_rttm_and_json_carry_the_diarizers_turns_where_words_are_missing() -> None:
    # A diarizer that hears all speech (the local engine's file mode) knows of a backchannel ("mhm",
    # no word decoded) under speaker 0's turn, and of speech the recogniser missed altogether.
    transcript = Transcript("local")
    transcript.add(
        TranscriptResult(
            "a",
            False,
            0.5,
            3.0,
            "I see it.",
            (
                Word("I", 0.5, 0.7, speaker="0"),
                Word("see", 0.8, 1.0, speaker="0"),
                Word("it", 2.6, 3.0, speaker="0"),
            ),
        )
    )
    transcript.speaker_turns = [
        SpeakerTurn("0", 0.4, 3.1),
        SpeakerTurn("1", 1.2, 1.6),
        SpeakerTurn("0", 5.0, 7.5),
    ]
    turns = parse_rttm(to_rttm(transcript, file_id="call"))
    assert [(t.speaker, t.start, round(t.start + t.duration, 3)) for t in turns] == [
        ("spk_0", 0.4, 3.1),
        ("spk_1", 1.2, 1.6),
        ("spk_0", 5.0, 7.5),
    ], "every turn, the overlapped one and the wordless one included; no pause cuts a turn"
    document = json.loads(to_json(transcript))
    assert document["speaker_turns"][1] == {"speaker": "1", "start": 1.2, "end": 1.6}
    assert to_text(transcript) == "spk_0: I see it\n", "text shows words only"

    words_only = Transcript("aws", results=transcript.results)
    assert [(t.speaker, t.start) for t in parse_rttm(to_rttm(words_only))] == [
        ("spk_0", 0.5),
        ("spk_0", 2.6),
    ], "without turns, the words' turns cut at pauses over 1 s"


def test_numbered_speakers_are_shown_as_spk_labels() -> None:
    # Streaming Transcribe (and the local engine) number speakers "0", "1"; "0: hi" would read as a list.
    transcript = Transcript("p")
    transcript.add(TranscriptResult("a", False, 0.0, 1.0, "hi", (Word("hi", 0.0, 1.0, speaker="0"),)))
    assert to_text(transcript) == "spk_0: hi\n"
    assert parse_rttm(to_rttm(transcript))[0].speaker == "spk_0"
    assert json.loads(to_json(transcript))["segments"][0]["speaker"] == "0", "data keeps the raw label"


# --- SRT and WebVTT --------------------------------------------------------------------------------


def check_cue_layout(cues: list[ParsedCue], stm: list[StmLine]) -> None:
    for cue, following in zip(cues, [*cues[1:], None], strict=True):
        assert 0 <= cue.start <= cue.end
        assert cue.end - cue.start <= MAX_CUE_SECONDS
        assert all(len(line) <= MAX_LINE_CHARS + len("<v Sheila>") for line in cue.lines)
        # Every cue starts in a spoken line of the reference and ends with it, or (when the words were
        # too short to read) at most MIN_CUE_SECONDS later and never into the next cue.
        line = max((line for line in stm if line.start - 1e-3 <= cue.start), key=lambda line: line.start)
        assert cue.start <= line.end
        assert cue.end <= max(line.end + 1e-3, cue.start + MIN_CUE_SECONDS + 1e-3), cue
        if following is not None:
            assert cue.end <= following.start + 1e-3
    assert [c.start for c in cues] == sorted(c.start for c in cues)


def test_srt_parses_back_to_the_speakers_text_and_times(call: Transcript, stm: list[StmLine]) -> None:
    cues = parse_srt(to_srt(call))
    check_cue_layout(cues, stm)
    voiced = [srt_voice(cue, {"Diane", "Sheila"}) for cue in cues]
    assert all(speaker is not None for speaker, _ in voiced), "every cue names its speaker"
    assert group_cues(voiced) == speaker_turns(stm)
    first = stm[0]
    assert cues[0].start == pytest.approx(first.start, abs=1e-3)


def test_vtt_parses_back_to_the_speakers_text_and_times(call: Transcript, stm: list[StmLine]) -> None:
    cues = parse_vtt(to_vtt(call))
    check_cue_layout(cues, stm)
    voiced = [vtt_voice(cue) for cue in cues]
    assert group_cues(voiced) == speaker_turns(stm)
    assert len(cues) == len(parse_srt(to_srt(call))), "both subtitle formats cut the same cues"


def test_subtitles_cut_long_monologues_and_pauses() -> None:
    # 40 words at 0.3 s each, then a 3 s pause, then 3 more words: one speaker, one segment.
    words = [Word(f"word{i}", i * 0.3, i * 0.3 + 0.25, speaker="spk_0") for i in range(40)]
    words += [Word(f"late{i}", 15.0 + i * 0.3, 15.25 + i * 0.3, speaker="spk_0") for i in range(3)]
    transcript = Transcript("p")
    transcript.add(TranscriptResult("a", False, 0.0, 16.0, "", tuple(words)))
    assert len(transcript.segments()) == 1
    cues = subtitle_cues(transcript)
    assert len(cues) >= 3
    assert " ".join(c.text for c in cues) == " ".join(w.text for w in words), "no word lost or repeated"
    assert all(c.end - c.start <= MAX_CUE_SECONDS for c in cues)
    assert not any(c.start < 15.0 < c.end for c in cues), "no cue stays on screen through the pause"
    assert cues[-1].start == 15.0


def test_vtt_escapes_markup_and_srt_times_pass_an_hour() -> None:
    transcript = Transcript("p")
    words = (Word("x<y", 3723.456, 3724.0, speaker="A&B"), Word("-->", 3724.0, 3724.5, speaker="A&B"))
    transcript.add(TranscriptResult("a", False, 3723.456, 3724.5, "x<y -->", words))
    vtt = to_vtt(transcript)
    cue = parse_vtt(vtt)[0]
    assert vtt_voice(cue) == ("A&B", "x<y -->")
    assert "-->" not in vtt.split("\n", 3)[3], "a cue's text cannot contain the timing arrow"
    srt_cue = parse_srt(to_srt(transcript))[0]
    assert (srt_cue.start, srt_cue.end) == (3723.456, 3724.5)
    assert to_srt(transcript).splitlines()[1] == "01:02:03,456 --> 01:02:04,500"


def test_cues_too_short_to_read_are_held_until_the_next_one() -> None:
    transcript = Transcript("p")
    transcript.add(TranscriptResult("a", False, 1.0, 1.0, "Okay.", (Word("Okay.", 1.0, 1.0, speaker="0"),)))
    transcript.add(TranscriptResult("b", False, 1.3, 1.3, "Yes.", (Word("Yes.", 1.3, 1.3, speaker="1"),)))
    transcript.add(
        TranscriptResult("c", False, 5.0, 6.0, "Long one.", (Word("Long one.", 5.0, 6.0, speaker="1"),))
    )
    cues = parse_srt(to_srt(transcript))
    assert [(c.start, c.end) for c in cues] == [(1.0, 1.3), (1.3, 1.3 + MIN_CUE_SECONDS), (5.0, 6.0)]


def test_results_without_words_still_become_cues() -> None:
    transcript = Transcript("p")
    transcript.add(TranscriptResult("a", False, 1.0, 2.5, "Hello world"))
    assert parse_srt(to_srt(transcript)) == [ParsedCue(1.0, 2.5, ["Hello world"])]
    assert to_vtt(Transcript("p")) == "WEBVTT\n"


# --- RTTM ------------------------------------------------------------------------------------------


def test_rttm_reproduces_the_reference_diarization(data_dir: Path) -> None:
    reference = parse_rttm((data_dir / "pyannote" / "sample.rttm").read_text())
    # One final per reference turn whose single word spans the turn, as a perfect diarizer would give.
    transcript = Transcript("reference")
    for n, turn in enumerate(sorted(reference, key=lambda t: t.start)):
        end = turn.start + turn.duration
        transcript.add(
            TranscriptResult(
                f"r{n}", False, turn.start, end, "w", (Word("w", turn.start, end, None, turn.speaker),)
            )
        )
    written = parse_rttm(to_rttm(transcript, file_id="sample"))
    assert sorted(written, key=lambda t: (t.start, t.speaker)) == sorted(
        reference, key=lambda t: (t.start, t.speaker)
    )


def test_rttm_turns_follow_speakers_and_skip_pauses(call: Transcript, stm: list[StmLine]) -> None:
    turns = parse_rttm(to_rttm(call, file_id="my call.wav"))
    assert {t.file_id for t in turns} == {"my_call.wav"}, "fields never contain spaces"
    assert {t.speaker for t in turns} == {"Diane", "Sheila"}
    for turn in turns:
        # Each turn is inside speech of its speaker and never bridges a pause over 1 s.
        covering = [
            line
            for line in stm
            if line.speaker == turn.speaker and line.start - 1e-3 <= turn.start <= line.end + 1e-3
        ]
        assert covering, turn
    spoken = sum(t.duration for t in turns)
    reference = sum(line.end - line.start for line in stm)
    assert spoken == pytest.approx(reference, rel=0.1)


def test_rttm_uses_channels_and_leaves_out_unlabelled_speech() -> None:
    transcript = Transcript("p")
    transcript.add(TranscriptResult("a", False, 0.0, 1.0, "hi", (Word("hi", 0.0, 1.0),), channel="ch_1"))
    transcript.add(TranscriptResult("b", False, 1.0, 2.0, "anon", (Word("anon", 1.0, 2.0),)))
    transcript.add(
        TranscriptResult("c", False, 2.0, 3.0, "there", (Word("there", 2.0, 2.5, speaker="spk_0"),))
    )
    turns = parse_rttm(to_rttm(transcript))
    assert turns == [Turn("audio", 2, 0.0, 1.0, "ch_1"), Turn("audio", 1, 2.0, 0.5, "spk_0")]


# --- dispatch --------------------------------------------------------------------------------------


def test_serialize_writes_every_format(call: Transcript) -> None:
    assert serialize(call, "text") == to_text(call)
    assert serialize(call, "json") == to_json(call)
    assert serialize(call, "jsonl") == to_jsonl(call.results)
    assert serialize(call, "srt") == to_srt(call)
    assert serialize(call, "vtt") == to_vtt(call)
    assert serialize(call, "rttm", file_id="sample") == to_rttm(call, file_id="sample")
    assert set(FORMATS) == {"text", "json", "jsonl", "srt", "vtt", "rttm"}


def test_serialize_rejects_an_unknown_format(call: Transcript) -> None:
    with pytest.raises(ConfigurationError, match="unknown output format 'xml'; choose one of text, json"):
        serialize(call, "xml")  # type: ignore[arg-type]

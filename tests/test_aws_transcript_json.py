"""TranscriptEvent JSON <-> TranscriptResult: every field mapped, both ways, nothing lost."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beluga_voice.errors import ProtocolError
from beluga_voice.providers.aws_transcribe.transcript_json import (
    parse_transcript_event,
    transcript_event_payload,
)
from beluga_voice.stt.model import Alternative, Entity, LanguageScore, Transcript, TranscriptResult, Word

# The protocol document's example, extended with a second alternative and a punctuation item.
SERVICE_EVENT = {
    "Transcript": {
        "Results": [
            {
                "ResultId": "55421b61-4b2c-4b0e-a4b2-7c1d1f0b5b0e",
                "StartTime": 1.26,
                "EndTime": 2.775,
                "IsPartial": False,
                "ChannelId": "ch_1",
                "LanguageCode": "en-US",
                "LanguageIdentification": [
                    {"LanguageCode": "en-US", "Score": 0.805},
                    {"LanguageCode": "de-DE", "Score": 0.195},
                ],
                "Alternatives": [
                    {
                        "Transcript": "Hello John.",
                        "Items": [
                            {
                                "Content": "Hello",
                                "StartTime": 1.26,
                                "EndTime": 1.6,
                                "Type": "pronunciation",
                                "VocabularyFilterMatch": False,
                                "Stable": True,
                                "Confidence": 0.97,
                                "Speaker": "0",
                            },
                            {
                                "Content": "John",
                                "StartTime": 1.7,
                                "EndTime": 2.7,
                                "Type": "pronunciation",
                                "VocabularyFilterMatch": True,
                                "Stable": False,
                                "Confidence": 0.5,
                                "Speaker": "1",
                            },
                            {
                                "Content": ".",
                                "StartTime": 2.7,
                                "EndTime": 2.7,
                                "Type": "punctuation",
                                "VocabularyFilterMatch": False,
                            },
                        ],
                        "Entities": [
                            {
                                "Category": "PII",
                                "Type": "NAME",
                                "Content": "John",
                                "StartTime": 1.7,
                                "EndTime": 2.7,
                                "Confidence": 0.99,
                            }
                        ],
                    },
                    {"Transcript": "Hello, Jon.", "Items": []},
                ],
            }
        ]
    }
}


def test_every_field_of_a_service_event_is_mapped() -> None:
    (result,) = parse_transcript_event(json.dumps(SERVICE_EVENT).encode())
    assert result.result_id == "55421b61-4b2c-4b0e-a4b2-7c1d1f0b5b0e"
    assert (result.start, result.end, result.is_partial) == (1.26, 2.775, False)
    assert (result.channel, result.language_code) == ("ch_1", "en-US")
    assert result.language_scores == (LanguageScore("en-US", 0.805), LanguageScore("de-DE", 0.195))
    assert result.text == "Hello John."
    hello, john, stop = result.words
    assert hello == Word("Hello", 1.26, 1.6, confidence=0.97, speaker="0", stable=True)
    assert john.vocabulary_filter_match and john.speaker == "1" and john.stable is False
    assert stop.is_punctuation and stop.confidence is None and stop.speaker is None and stop.stable is None
    assert result.entities == (Entity("PII", "NAME", "John", 1.7, 2.7, 0.99),)
    assert result.alternatives == (Alternative("Hello, Jon."),)
    assert dataclasses.replace(result, is_partial=True).stable_text == "Hello"


def test_writing_back_gives_the_services_json_exactly() -> None:
    results = parse_transcript_event(json.dumps(SERVICE_EVENT).encode())
    assert json.loads(transcript_event_payload(results)) == SERVICE_EVENT


def test_fields_that_are_none_are_left_out_so_the_server_decides_what_appears() -> None:
    plain = TranscriptResult("r1", True, 0.0, 0.5, "hi", (Word("hi", 0.0, 0.5),))
    (written,) = json.loads(transcript_event_payload([plain]))["Transcript"]["Results"]
    assert set(written) == {"ResultId", "StartTime", "EndTime", "IsPartial", "Alternatives"}
    (item,) = written["Alternatives"][0]["Items"]
    assert set(item) == {"Content", "StartTime", "EndTime", "Type", "VocabularyFilterMatch"}


def test_empty_results_and_empty_alternatives_are_tolerated() -> None:
    assert parse_transcript_event(b'{"Transcript":{"Results":[]}}') == []
    assert parse_transcript_event(b'{"Transcript":{}}') == []
    (bare,) = parse_transcript_event(b'{"Transcript":{"Results":[{"ResultId":"x","IsPartial":true}]}}')
    assert (bare.text, bare.words, bare.is_partial, bare.start) == ("", (), True, 0.0)


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"\xff\xfe",
        b'{"Transcript":{"Results":{}}}',
        b'{"Transcript":{"Results":[3]}}',
        b"[]",
        b'{"Transcript":{"Results":[{"IsPartial":"false"}]}}',
    ],
)
def test_malformed_payloads_raise_protocol_errors(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_transcript_event(payload)


def test_speakers_languages_and_channels_reach_the_transcript() -> None:
    results = parse_transcript_event(json.dumps(SERVICE_EVENT).encode())
    transcript = Transcript(provider="aws")
    for result in results:
        transcript.add(result)
    assert transcript.speakers == ["0", "1"]
    assert {s.channel for s in transcript.segments()} == {"ch_1"}
    assert {s.language_code for s in transcript.segments()} == {"en-US"}


_times = st.floats(0, 14400, allow_nan=False, allow_infinity=False)
_text = st.text(max_size=12)
_words = st.builds(
    Word,
    text=_text,
    start=_times,
    end=_times,
    confidence=st.none() | st.floats(0, 1),
    speaker=st.none() | st.sampled_from(["0", "1", "2"]),
    stable=st.none() | st.booleans(),
    is_punctuation=st.booleans(),
    vocabulary_filter_match=st.booleans(),
)
_entities = st.builds(
    Entity,
    category=st.just("PII"),
    type=st.sampled_from(["NAME", "SSN", "EMAIL"]),
    content=_text,
    start=_times,
    end=_times,
    confidence=st.none() | st.floats(0, 1),
)
_results = st.builds(
    TranscriptResult,
    result_id=st.uuids().map(str),
    is_partial=st.booleans(),
    start=_times,
    end=_times,
    text=_text,
    words=st.lists(_words, max_size=5).map(tuple),
    channel=st.none() | st.sampled_from(["ch_0", "ch_1"]),
    language_code=st.none() | st.sampled_from(["en-US", "de-DE"]),
    language_scores=st.lists(
        st.builds(LanguageScore, language_code=st.sampled_from(["en-US", "fr-FR"]), score=st.floats(0, 1)),
        max_size=3,
    ).map(tuple),
    entities=st.lists(_entities, max_size=2).map(tuple),
    alternatives=st.lists(
        st.builds(
            Alternative,
            text=_text,
            words=st.lists(_words, max_size=3).map(tuple),
            entities=st.lists(_entities, max_size=1).map(tuple),
        ),
        max_size=2,
    ).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_results, max_size=4))
def test_any_results_round_trip_without_loss(results: list[TranscriptResult]) -> None:
    assert parse_transcript_event(transcript_event_payload(results)) == results

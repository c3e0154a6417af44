"""PII by patterns, and the result shaping the server applies before anything reaches a client."""

from __future__ import annotations

from pathlib import Path

import pytest

from beluga_voice.errors import ConfigurationError
from beluga_voice.providers.aws_transcribe.config import TranscribeConfig
from beluga_voice.server.pii import PiiSettings, apply_pii, find_entities
from beluga_voice.server.results import ResultShaper
from beluga_voice.server.vocabulary import VocabularyFilter, parse_filter_option
from beluga_voice.stt.model import TranscriptResult, Word, join_words


def result(text: str, *, partial: bool = False, speaker: str | None = None) -> TranscriptResult:
    words = []
    for index, token in enumerate(text.split()):
        core = token.rstrip(".,")
        words.append(Word(core, index * 0.4, index * 0.4 + 0.3, 0.93, speaker=speaker))
        if core != token:
            words.append(
                Word(token[len(core) :], index * 0.4 + 0.3, index * 0.4 + 0.3, 0.93, is_punctuation=True)
            )
    return TranscriptResult("r-1", partial, 0.0, len(words) * 0.4, join_words(words), tuple(words))


def types_in(text: str) -> list[str]:
    return [kind for kind, _, _ in find_entities(result(text).words)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card is 4111 1111 1111 1111 thanks", ["CREDIT_DEBIT_NUMBER"]),
        ("my card is 4111 1111 1111 1112 thanks", []),  # fails the Luhn check: not a card
        ("social security 123-45-6789.", ["SSN"]),
        ("my social security number is 123 45 6789", ["SSN"]),
        ("call me at 555-123-4567 tomorrow", ["PHONE"]),
        ("call five five five one two three four five six seven", ["PHONE"]),
        ("write to jane.doe@example.com please", ["EMAIL"]),
        ("the pin is 4821", ["PIN"]),
        ("the cvv is 123", ["CREDIT_DEBIT_CVV"]),
        ("it expires 09/27", ["CREDIT_DEBIT_EXPIRY"]),
        ("routing number 021000021", ["BANK_ROUTING"]),
        ("account number 12345678", ["BANK_ACCOUNT_NUMBER"]),
        ("he was not an ill disposed young man in 1811", []),
    ],
)
def test_entity_types_found_by_pattern(text: str, expected: list[str]) -> None:
    assert types_in(text) == expected


def test_redaction_replaces_content_and_lists_entities() -> None:
    redacted = apply_pii(result("my pin is 4821 and mail me at a@b.co."), PiiSettings(redact=True))
    assert redacted.text == "my pin is [PII] and mail me at [PII]."
    assert [(e.type, e.content, e.category) for e in redacted.entities] == [
        ("PIN", "[PII]", "PII"),
        ("EMAIL", "[PII]", "PII"),
    ]
    assert redacted.entities[0].start == pytest.approx(1.2) and redacted.entities[0].confidence == 0.93


def test_identification_keeps_content_and_respects_the_entity_types() -> None:
    settings = PiiSettings(redact=False, entity_types=PiiSettings.parse_types("EMAIL"))
    found = apply_pii(result("pin 4821 mail a@b.co"), settings)
    assert found.text == "pin 4821 mail a@b.co"
    assert [(e.type, e.content) for e in found.entities] == [("EMAIL", "a@b.co")]


def test_partials_are_redacted_too_and_carry_no_confidence_or_speaker() -> None:
    config = TranscribeConfig(content_redaction_type="PII", show_speaker_label=True)
    shaper = ResultShaper(config)
    partial = shaper.shape(result("call 555-123-4567 now", partial=True, speaker="0"))
    assert "555" not in partial.text and "[PII]" in partial.text
    assert all(w.confidence is None and w.speaker is None for w in partial.words)
    final = shaper.shape(result("call 555-123-4567 now", speaker="0"))
    assert all(w.confidence == 0.93 and w.speaker == "0" for w in final.words if not w.is_punctuation)


def test_stable_prefix_is_pinned_even_if_the_engine_revises_it() -> None:
    shaper = ResultShaper(
        TranscribeConfig(enable_partial_results_stabilization=True, partial_results_stability="high")
    )
    shaper.shape(result("the amazon is", partial=True))
    second = shaper.shape(result("the amazon is the", partial=True))
    assert [w.stable for w in second.words] == [True, True, True, False]
    revised = shaper.shape(result("a amazing is the largest", partial=True))
    assert revised.text.startswith("the amazon is")
    final = shaper.shape(result("the amazon is the largest rainforest."))
    assert all(w.stable for w in final.words)


def test_fields_not_asked_for_are_left_out() -> None:
    raw = TranscriptResult(
        "r", False, 0.0, 1.0, "hi", (Word("hi", 0.0, 1.0, 0.9, speaker="1"),), language_code="en-US"
    )
    shaped = ResultShaper(TranscribeConfig()).shape(raw)
    assert shaped.language_code is None and shaped.words[0].speaker is None and shaped.words[0].stable is None


@pytest.mark.parametrize(
    ("method", "text", "matches"),
    [("mask", "well *** it, fine.", 1), ("remove", "well it, fine.", 0), ("tag", "well Darn it, fine.", 1)],
)
def test_vocabulary_filter_methods(method: str, text: str, matches: int) -> None:
    vocabulary = VocabularyFilter(frozenset({"darn"}), method)
    filtered = ResultShaper(TranscribeConfig(), vocabulary_filter=vocabulary).shape(
        result("well Darn it, fine.")
    )
    assert filtered.text == text
    assert sum(w.vocabulary_filter_match for w in filtered.words) == matches


def test_vocabulary_filter_files_and_lookup(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# rude words\nDarn\n\nheck\n")
    name, words = parse_filter_option(f"rude={path}")
    assert (name, words) == ("rude", frozenset({"darn", "heck"}))
    assert VocabularyFilter.for_stream({"rude": words}, ["", "rude"], None) == VocabularyFilter(words, "mask")
    assert VocabularyFilter.for_stream({}, ["anything"], "tag") is None  # no filters configured: not applied
    with pytest.raises(LookupError):
        VocabularyFilter.for_stream({"rude": words}, ["other"], "mask")
    with pytest.raises(ConfigurationError, match="NAME=FILE"):
        parse_filter_option("rude")

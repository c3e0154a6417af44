"""TranscriptEvent JSON <-> the result model, both ways and without loss.

The client parses what the service sends; ``beluga serve`` writes the same JSON from its results.
Every field of the model's ``Result``/``Alternative``/``Item``/``Entity`` is mapped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from beluga_voice.errors import ProtocolError
from beluga_voice.stt.model import Alternative, Entity, LanguageScore, TranscriptResult, Word

PUNCTUATION = "punctuation"
PRONUNCIATION = "pronunciation"

JsonObject = dict[str, Any]


def parse_transcript_event(payload: bytes) -> list[TranscriptResult]:
    """The results of one TranscriptEvent payload (``[]`` for the service's empty events)."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"TranscriptEvent payload is not valid JSON: {exc}") from None
    try:
        transcript = _object(document, "event").get("Transcript")
        if transcript is None:
            return []
        return [_result(_object(r, "Result")) for r in _members(_object(transcript, "Transcript"), "Results")]
    except (TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"TranscriptEvent payload does not have the service's shape: {exc}") from None


def transcript_event_payload(results: Sequence[TranscriptResult]) -> bytes:
    """The service's TranscriptEvent JSON for ``results`` (fields that are ``None`` are left out)."""
    document = {"Transcript": {"Results": [_result_json(r) for r in results]}}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- parsing ------------------------------------------------------------------------------------


def _object(value: object, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise TypeError(f"{what} should be an object, got {type(value).__name__}")
    return value


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"{what} should be a list, got {type(value).__name__}")
    return value


def _members(obj: JsonObject, key: str) -> list[Any]:
    value = obj.get(key)
    return [] if value is None else _list(value, key)


def _float(obj: JsonObject, key: str) -> float:
    value = obj.get(key)
    return 0.0 if value is None else float(value)


def _optional_float(obj: JsonObject, key: str) -> float | None:
    value = obj.get(key)
    return None if value is None else float(value)


def _optional_str(obj: JsonObject, key: str) -> str | None:
    value = obj.get(key)
    return None if value is None else str(value)


def _optional_bool(obj: JsonObject, key: str) -> bool | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"{key} should be true or false, got {value!r}")


def _bool(obj: JsonObject, key: str) -> bool:
    return bool(_optional_bool(obj, key))


def _result(obj: JsonObject) -> TranscriptResult:
    alternatives = [_alternative(_object(a, "Alternative")) for a in _members(obj, "Alternatives")]
    best = alternatives[0] if alternatives else Alternative(text="")
    return TranscriptResult(
        result_id=str(obj.get("ResultId") or ""),
        is_partial=_bool(obj, "IsPartial"),
        start=_float(obj, "StartTime"),
        end=_float(obj, "EndTime"),
        text=best.text,
        words=best.words,
        channel=_optional_str(obj, "ChannelId"),
        language_code=_optional_str(obj, "LanguageCode"),
        language_scores=tuple(
            LanguageScore(language_code=str(s.get("LanguageCode") or ""), score=_float(s, "Score"))
            for s in (_object(x, "LanguageWithScore") for x in _members(obj, "LanguageIdentification"))
        ),
        entities=best.entities,
        alternatives=tuple(alternatives[1:]),
    )


def _alternative(obj: JsonObject) -> Alternative:
    return Alternative(
        text=str(obj.get("Transcript") or ""),
        words=tuple(_word(_object(i, "Item")) for i in _members(obj, "Items")),
        entities=tuple(_entity(_object(e, "Entity")) for e in _members(obj, "Entities")),
    )


def _word(obj: JsonObject) -> Word:
    # The hot path of every result (each word of each partial): the helpers' checks, inlined.
    get = obj.get
    start, end, confidence, speaker = get("StartTime"), get("EndTime"), get("Confidence"), get("Speaker")
    stable, match = get("Stable"), get("VocabularyFilterMatch")
    if not (stable is None or isinstance(stable, bool)):
        raise TypeError(f"Stable should be true or false, got {stable!r}")
    if not (match is None or isinstance(match, bool)):
        raise TypeError(f"VocabularyFilterMatch should be true or false, got {match!r}")
    return Word(
        str(get("Content") or ""),
        0.0 if start is None else float(start),
        0.0 if end is None else float(end),
        None if confidence is None else float(confidence),
        None if speaker is None else str(speaker),
        stable,
        get("Type") == PUNCTUATION,
        bool(match),
    )


def _entity(obj: JsonObject) -> Entity:
    return Entity(
        category=str(obj.get("Category") or ""),
        type=str(obj.get("Type") or ""),
        content=str(obj.get("Content") or ""),
        start=_float(obj, "StartTime"),
        end=_float(obj, "EndTime"),
        confidence=_optional_float(obj, "Confidence"),
    )


# --- writing ------------------------------------------------------------------------------------


def _result_json(result: TranscriptResult) -> JsonObject:
    out: JsonObject = {
        "ResultId": result.result_id,
        "StartTime": result.start,
        "EndTime": result.end,
        "IsPartial": result.is_partial,
    }
    if result.channel is not None:
        out["ChannelId"] = result.channel
    if result.language_code is not None:
        out["LanguageCode"] = result.language_code
    if result.language_scores:
        out["LanguageIdentification"] = [
            {"LanguageCode": s.language_code, "Score": s.score} for s in result.language_scores
        ]
    best = Alternative(text=result.text, words=result.words, entities=result.entities)
    out["Alternatives"] = [_alternative_json(a) for a in (best, *result.alternatives)]
    return out


def _alternative_json(alternative: Alternative) -> JsonObject:
    out: JsonObject = {
        "Transcript": alternative.text,
        "Items": [_word_json(w) for w in alternative.words],
    }
    if alternative.entities:
        out["Entities"] = [_entity_json(e) for e in alternative.entities]
    return out


def _word_json(word: Word) -> JsonObject:
    out: JsonObject = {
        "Content": word.text,
        "StartTime": word.start,
        "EndTime": word.end,
        "Type": PUNCTUATION if word.is_punctuation else PRONUNCIATION,
        "VocabularyFilterMatch": word.vocabulary_filter_match,
    }
    if word.stable is not None:
        out["Stable"] = word.stable
    if word.confidence is not None:
        out["Confidence"] = word.confidence
    if word.speaker is not None:
        out["Speaker"] = word.speaker
    return out


def _entity_json(entity: Entity) -> JsonObject:
    out: JsonObject = {
        "Category": entity.category,
        "Type": entity.type,
        "Content": entity.content,
        "StartTime": entity.start,
        "EndTime": entity.end,
    }
    if entity.confidence is not None:
        out["Confidence"] = entity.confidence
    return out

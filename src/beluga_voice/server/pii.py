"""PII identification and redaction by patterns, for the entity types a pattern can find.

The service uses a model; the local server finds what has a shape: card numbers (Luhn checked),
SSNs, phone numbers, e-mail addresses, and numbers announced by a keyword (PIN, CVV, expiry, bank
account, routing number). Names and addresses are not detected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from beluga_voice.stt.model import Entity, TranscriptResult, Word, join_words

REDACTED = "[PII]"
DETECTABLE_TYPES = frozenset(
    {
        "BANK_ACCOUNT_NUMBER",
        "BANK_ROUTING",
        "CREDIT_DEBIT_NUMBER",
        "CREDIT_DEBIT_CVV",
        "CREDIT_DEBIT_EXPIRY",
        "PIN",
        "EMAIL",
        "PHONE",
        "SSN",
    }
)
ALL_TYPES = DETECTABLE_TYPES | {"NAME", "ADDRESS"}

_SPOKEN_DIGITS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_NUMBERISH = re.compile(r"^[\d()+\-./]*\d[\d()+\-./]*$")
_EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")
_SSN_SHAPE = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_PHONE_SHAPE = re.compile(r"^(\+?1[ -.]?)?(\(\d{3}\)|\d{3})[ -.]?\d{3}[ -.]?\d{4}$")
_EXPIRY_SHAPE = re.compile(r"^(0?[1-9]|1[0-2])/(\d{2}|\d{4})$")
_TRAILING = ".,;:!?"
# Keyword (in the few words before a number) -> (entity type, allowed digit counts).
_CONTEXT_RULES: tuple[tuple[re.Pattern[str], str, range], ...] = (
    (re.compile(r"\b(social security|ssn)\b"), "SSN", range(9, 10)),
    (re.compile(r"\b(cvv|cvc|security code)\b"), "CREDIT_DEBIT_CVV", range(3, 5)),
    (re.compile(r"\bexpir"), "CREDIT_DEBIT_EXPIRY", range(3, 7)),
    (re.compile(r"\bpin\b"), "PIN", range(4, 7)),
    (re.compile(r"\brouting\b"), "BANK_ROUTING", range(9, 10)),
    (re.compile(r"\baccount\b"), "BANK_ACCOUNT_NUMBER", range(6, 18)),
)


@dataclass(frozen=True)
class PiiSettings:
    """What the stream asked for: ``redact`` replaces content, otherwise entities are only reported."""

    redact: bool
    entity_types: frozenset[str] = ALL_TYPES

    @classmethod
    def parse_types(cls, value: str | Sequence[str] | None) -> frozenset[str]:
        if value is None:
            return ALL_TYPES
        items = value.split(",") if isinstance(value, str) else list(value)
        names = {item.strip().upper() for item in items if item.strip()}
        return ALL_TYPES if not names or "ALL" in names else frozenset(names)


def _clean(text: str) -> str:
    return text.strip().rstrip(_TRAILING).lower()


def _digits_of(word: Word) -> str | None:
    text = _clean(word.text)
    if text in _SPOKEN_DIGITS:
        return _SPOKEN_DIGITS[text]
    if _NUMBERISH.match(text):
        return re.sub(r"\D", "", text)
    return None


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


@dataclass(frozen=True)
class _Run:
    start: int
    end: int  # exclusive, word indexes
    digits: str
    raw: str


def _number_runs(words: Sequence[Word]) -> Iterable[_Run]:
    index = 0
    while index < len(words):
        if words[index].is_punctuation or _digits_of(words[index]) is None:
            index += 1
            continue
        start, digits, raws = index, "", []
        while index < len(words) and not words[index].is_punctuation:
            piece = _digits_of(words[index])
            if piece is None:
                break
            digits += piece
            raws.append(_clean(words[index].text))
            index += 1
        yield _Run(start, index, digits, " ".join(raws))


def _classify(run: _Run, context: str) -> str | None:
    if _SSN_SHAPE.match(run.raw):
        return "SSN"
    if 13 <= len(run.digits) <= 19 and luhn_valid(run.digits):
        return "CREDIT_DEBIT_NUMBER"
    if _EXPIRY_SHAPE.match(run.raw.replace(" ", "")) and "expir" in context:
        return "CREDIT_DEBIT_EXPIRY"
    for keyword, entity_type, lengths in _CONTEXT_RULES:
        if keyword.search(context) and len(run.digits) in lengths:
            return entity_type
    if (
        _PHONE_SHAPE.match(run.raw)
        or len(run.digits) == 10
        or (len(run.digits) == 11 and run.digits[0] == "1")
    ):
        return "PHONE"
    return None


def find_entities(words: Sequence[Word]) -> list[tuple[str, int, int]]:
    """(type, first word index, end word index) for each entity found, in order."""
    found: list[tuple[str, int, int]] = []
    for index, word in enumerate(words):
        if not word.is_punctuation and _EMAIL.match(_clean(word.text)):
            found.append(("EMAIL", index, index + 1))
    for run in _number_runs(words):
        context = " ".join(_clean(w.text) for w in words[max(0, run.start - 5) : run.start])
        entity_type = _classify(run, context)
        if entity_type is not None:
            found.append((entity_type, run.start, run.end))
    return sorted(found, key=lambda item: item[1])


def apply_pii(result: TranscriptResult, settings: PiiSettings) -> TranscriptResult:
    """The result with PII entities listed and, when redacting, their words replaced by ``[PII]``."""
    words = list(result.words)
    entities: list[Entity] = []
    for entity_type, start, end in find_entities(words):
        if entity_type not in settings.entity_types:
            continue
        span = words[start:end]
        confidences = [w.confidence for w in span if w.confidence is not None]
        entities.append(
            Entity(
                category="PII",
                type=entity_type,
                content=REDACTED if settings.redact else join_words(span),
                start=span[0].start,
                end=span[-1].end,
                confidence=round(min(confidences), 4) if confidences else None,
            )
        )
        if settings.redact:
            for index in range(start, end):
                words[index] = replace(words[index], text=REDACTED)
    if not entities:
        return result
    text = join_words(words) if settings.redact else result.text
    return replace(result, words=tuple(words), text=text, entities=tuple(entities))

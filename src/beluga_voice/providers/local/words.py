"""Whisper's words to result words: punctuation as separate items, times on the stream timeline."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from beluga_voice.stt.model import Word

_TRAILING = re.compile(r"^(.*?[^.,?!;:…\"'”)\]]|)([.,?!;:…\"'”)\]]+)$")
_LEADING = re.compile(r"^([\"'“(\[¿¡]+)(.+)$")
# Abbreviations whose period belongs to the word (Transcribe writes "Mr." as one item too).
_ABBREVIATIONS = frozenset({"mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "vs.", "etc.", "prof.", "mt."})
_INITIALISM = re.compile(r"^(?:[A-Za-z]\.){2,}$")
SENTENCE_END = frozenset(".?!…")


class WhisperWord(Protocol):
    @property
    def word(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def probability(self) -> float: ...


def to_words(raw: Iterable[WhisperWord], offset: float, lower: float, upper: float) -> list[Word]:
    """Result words with times shifted by ``offset`` and kept within [lower, upper], never going back."""
    words: list[Word] = []
    cursor = lower
    previous: tuple[str, float, int] | None = None  # the last token, its start, where its items begin
    for item in raw:
        token = item.word.strip()
        if not token:
            continue
        start = min(max(offset + float(item.start), cursor), upper)
        end = min(max(offset + float(item.end), start), upper)
        cursor = end
        confidence = round(min(max(float(item.probability), 0.0), 1.0), 4)
        if previous is not None and _elides_into(previous[0], item.word):
            # French/Italian elision: Whisper gives "n" and "'êtes" as two words; Transcribe one item.
            token, start = previous[0] + token, previous[1]
            del words[previous[2] :]
        previous = (token, start, len(words))
        lead, core, trail = split_punctuation(token)
        if lead:
            words.append(Word(lead, start, start, confidence, is_punctuation=True))
        if core:
            words.append(Word(core, start, end, confidence))
        if trail:
            words.append(Word(trail, end, end, confidence, is_punctuation=True))
    return words


def _elides_into(previous: str, raw_word: str) -> bool:
    """Whether ``raw_word`` continues the token ``previous`` (an elision: "n" + "'êtes", "l'" +
    "étoile"): no space before it, and an apostrophe between two letters where they meet."""
    if raw_word[:1].isspace() or not previous:
        return False
    joined = previous + raw_word
    at = len(previous) - 1 if previous[-1] in "'’" else len(previous)
    return (
        0 < at < len(joined) - 1
        and joined[at] in "'’"
        and joined[at - 1].isalpha()
        and joined[at + 1].isalpha()
    )


def split_punctuation(token: str) -> tuple[str, str, str]:
    """``'"Hello,'`` -> ``('"', 'Hello', ',')``; abbreviations such as ``Mr.`` stay whole."""
    lead = ""
    match = _LEADING.match(token)
    if match:
        lead, token = match.group(1), match.group(2)
    if token.lower() in _ABBREVIATIONS or _INITIALISM.match(token):
        return lead, token, ""
    match = _TRAILING.match(token)
    if match and match.group(1):
        return lead, match.group(1), match.group(2)
    if match:  # the token is only punctuation
        return lead + token, "", ""
    return lead, token, ""


def ends_sentence(words: Sequence[Word]) -> bool:
    """Whether the last item closes a sentence (Whisper punctuates what sounds complete)."""
    return bool(words) and words[-1].is_punctuation and any(c in SENTENCE_END for c in words[-1].text)


def spoken(words: Iterable[Word]) -> list[Word]:
    return [w for w in words if not w.is_punctuation]

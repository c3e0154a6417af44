"""Stable partial results: words that two consecutive decodes agree on are committed.

Whisper re-decodes the whole utterance each time, so a later decode may rewrite earlier words.
A caption that keeps changing is hard to read and a voice agent cannot act on it, so once two
decodes in a row agree on a leading word it is marked ``stable`` and kept unchanged in every later
partial. The last word of a decode is never committed: it may be cut off by the end of the audio
decoded so far. The final is the decode of the whole utterance, the most accurate text; it agrees
with the stable words almost always, but may still correct one (forcing them cost 7 points of WER
on read speech).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from beluga_voice.stt.model import Word, word_identity

_TIME_SLACK = 0.05
_ANCHOR_SECONDS = 1.0  # how far a committed word may move between decodes and still be the same


class Stabilizer:
    """Per-utterance memory of committed words."""

    def __init__(self) -> None:
        self.committed: list[Word] = []
        self._previous: list[Word] = []  # the last decode, minus what is committed

    def partial(self, decoded: Sequence[Word]) -> list[Word]:
        """The words of a partial result for a new decode, ``stable`` set; commits agreed words."""
        rest = self._after_committed(decoded)
        agreed = _agreed_items(self._previous, rest)
        self.committed.extend(replace(w, stable=True) for w in rest[:agreed])
        self._previous = rest[agreed:]
        return self.committed + [replace(w, stable=False) for w in self._previous]

    def _after_committed(self, decoded: Sequence[Word]) -> list[Word]:
        if not self.committed:
            return list(decoded)
        expected = [word_identity(w.text) for w in self.committed if not w.is_punctuation]
        index = matched = 0
        while index < len(decoded) and matched < len(expected):
            if not decoded[index].is_punctuation:
                if word_identity(decoded[index].text) != expected[matched]:
                    break
                matched += 1
            index += 1
        if matched == len(expected):
            if self.committed[-1].is_punctuation:  # the punctuation after the last word is committed too
                while index < len(decoded) and decoded[index].is_punctuation:
                    index += 1
            return list(decoded[index:])
        # The decoder changed its mind about an earlier committed word: find where the last
        # committed words are in the new decode (near where they were) and keep what follows.
        last = self.committed[-1]
        tail = expected[-2:]
        positions = [i for i, w in enumerate(decoded) if not w.is_punctuation]
        for k in range(len(positions) - len(tail), -1, -1):
            window = [word_identity(decoded[i].text) for i in positions[k : k + len(tail)]]
            anchor = decoded[positions[k + len(tail) - 1]]
            if window == tail and abs(anchor.start - last.start) <= _ANCHOR_SECONDS:
                return list(decoded[positions[k + len(tail) - 1] + 1 :])
        boundary = last.end - _TIME_SLACK
        return [w for w in decoded if (w.start + w.end) / 2 >= boundary]


def _agreed_items(previous: Sequence[Word], current: Sequence[Word]) -> int:
    """How many leading items of ``current`` to commit: through the last spoken word on which it
    agrees with ``previous`` (and the punctuation after it if both have the same), excluding each
    decode's final spoken word."""
    before = _spoken_runs(previous)[:-1]
    agreed = 0
    for k, (index, text, trailing, after) in enumerate(_spoken_runs(current)[:-1]):
        if k >= len(before) or text != before[k][1]:
            break
        agreed = after if trailing and trailing == before[k][2] else index + 1
    return agreed


def _spoken_runs(words: Sequence[Word]) -> list[tuple[int, str, str, int]]:
    """Per spoken word: its index, normalised text, the punctuation right after it, and the index
    after that punctuation."""
    runs: list[tuple[int, str, str, int]] = []
    for index, word in enumerate(words):
        if not word.is_punctuation:
            runs.append((index, word_identity(word.text), "", index + 1))
        elif runs:
            start, text, trailing, _ = runs[-1]
            runs[-1] = (start, text, trailing + word.text, index + 1)
    return runs

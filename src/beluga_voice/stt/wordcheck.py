"""Word accounting between transcripts of the same audio: lost, duplicated and added words.

How the chaos tests and ``bench/chaos.py`` decide that a stream which survived faults kept every
word exactly once. A recogniser re-decodes replayed audio, so a word that comes back after a
reconnection may carry slightly different times; identity is therefore *text + time*:

* texts are compared normalised (lower case, punctuation stripped, number words as digits:
  "four" and "4" are the same word);
* a reference word and a candidate word are the same word when their texts are equal and their
  midpoints lie within ``tolerance`` seconds (default 0.5 s);
* words are paired one to one, in time order, per text (a maximum matching on the line), so a
  repeated word ("five five") needs two candidates;
* a reference word without a partner is **changed** when the candidate has some other word within
  the tolerance (that audio was transcribed, differently), and **lost** when it has none (that
  audio produced nothing: the mark of audio that never reached the recogniser);
* an unpaired candidate within the tolerance of a reference word (or of a paired candidate) of the
  same text is **duplicated**; any other unpaired candidate is **added**.

Why "changed" is not "lost": a recogniser that hears replayed audio on a fresh session (its own
segmentation, voice-activity state and running context start again) does not always choose the same
words as on the first pass ("a beat" / "of the"). That variance belongs to the recogniser; the
stream's duty is that the audio is heard, once, at the right time. A fair reference is the set of
words that every fault-free run yields (:func:`stable_words`), and the byte-level tests check that
each connection receives every byte after the cut.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from beluga_voice.stt.model import TranscriptResult, Word

DEFAULT_TOLERANCE = 0.5

_NOT_WORD = re.compile(r"[^\w']+")
_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty"
)
_TENS = {
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "sixty": "60",
    "seventy": "70",
    "eighty": "80",
    "ninety": "90",
}
_NUMBERS = {name: str(value) for value, name in enumerate(_UNITS.split(" "))} | _TENS


def normalize(text: str) -> str:
    """The comparable form of a word: lower case, no punctuation, number words as digits."""
    plain = _NOT_WORD.sub("", text.lower()).strip("'")
    return _NUMBERS.get(plain, plain)


def spoken_words(results: Iterable[TranscriptResult]) -> list[Word]:
    """The pronounced words of the final results, in order (partials and punctuation left out)."""
    return [w for r in results if r.is_final for w in r.words if not w.is_punctuation and normalize(w.text)]


def _middle(word: Word) -> float:
    return (word.start + word.end) / 2


def pair_words(
    reference: Sequence[Word], candidate: Sequence[Word], tolerance: float = DEFAULT_TOLERANCE
) -> list[tuple[int, int]]:
    """Index pairs (reference, candidate) of the same words, one to one, in time order per text."""
    by_text_ref: defaultdict[str, list[int]] = defaultdict(list)
    by_text_cand: defaultdict[str, list[int]] = defaultdict(list)
    for i, word in enumerate(reference):
        by_text_ref[normalize(word.text)].append(i)
    for j, word in enumerate(candidate):
        by_text_cand[normalize(word.text)].append(j)
    pairs: list[tuple[int, int]] = []
    for text, refs in by_text_ref.items():
        cands = by_text_cand.get(text, [])
        refs = sorted(refs, key=lambda i: _middle(reference[i]))
        cands = sorted(cands, key=lambda j: _middle(candidate[j]))
        i = j = 0
        while i < len(refs) and j < len(cands):  # greedy earliest pairing is a maximum matching here
            r, c = _middle(reference[refs[i]]), _middle(candidate[cands[j]])
            if abs(r - c) <= tolerance:
                pairs.append((refs[i], cands[j]))
                i += 1
                j += 1
            elif c < r:
                j += 1
            else:
                i += 1
    return sorted(pairs)


@dataclass(frozen=True)
class WordCheck:
    """The outcome of :func:`check_words`."""

    reference_words: int
    paired: tuple[tuple[Word, Word], ...]
    lost: tuple[Word, ...]
    changed: tuple[Word, ...]
    duplicated: tuple[Word, ...]
    added: tuple[Word, ...]

    @property
    def ok(self) -> bool:
        """No reference word lost, none duplicated."""
        return not self.lost and not self.duplicated

    @property
    def changed_ratio(self) -> float:
        return len(self.changed) / self.reference_words if self.reference_words else 0.0

    def speaker_agreement(self) -> float:
        """Share of paired, labelled words whose speaker follows the dominant label mapping.

        Labels are names, not identities ("0" here may be "1" there): each reference speaker is
        mapped to the candidate label most of its words carry, and the rest count as disagreements.
        """
        counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for ref, cand in self.paired:
            if ref.speaker is not None and cand.speaker is not None:
                counts[ref.speaker][cand.speaker] += 1
        total = sum(sum(c.values()) for c in counts.values())
        if not total:
            return 1.0
        return sum(c.most_common(1)[0][1] for c in counts.values()) / total

    def summary(self) -> str:
        def words(ws: Sequence[Word]) -> str:
            return ", ".join(f"{w.text}@{w.start:.2f}" for w in ws[:12]) + (" ..." if len(ws) > 12 else "")

        return (
            f"{self.reference_words} reference words: {len(self.lost)} lost [{words(self.lost)}], "
            f"{len(self.duplicated)} duplicated [{words(self.duplicated)}], "
            f"{len(self.changed)} changed [{words(self.changed)}], {len(self.added)} added [{words(self.added)}]"
        )


def check_words(
    reference: Sequence[Word], candidate: Sequence[Word], tolerance: float = DEFAULT_TOLERANCE
) -> WordCheck:
    """Account for every reference word in ``candidate`` (see the module docstring for the rules)."""
    pairs = pair_words(reference, candidate, tolerance)
    paired_ref = {i for i, _ in pairs}
    paired_cand = {j for _, j in pairs}
    middles = sorted(_middle(w) for w in candidate)
    lost: list[Word] = []
    changed: list[Word] = []
    for i, word in enumerate(reference):
        if i not in paired_ref:
            (changed if _any_within(middles, _middle(word), tolerance) else lost).append(word)
    duplicated: list[Word] = []
    added: list[Word] = []
    for j, word in enumerate(candidate):
        if j in paired_cand:
            continue
        text, middle = normalize(word.text), _middle(word)
        near = [
            other
            for other in (*reference, *(candidate[k] for k in paired_cand))
            if normalize(other.text) == text and abs(_middle(other) - middle) <= tolerance
        ]
        (duplicated if near else added).append(word)
    return WordCheck(
        reference_words=len(reference),
        paired=tuple((reference[i], candidate[j]) for i, j in pairs),
        lost=tuple(lost),
        changed=tuple(changed),
        duplicated=tuple(duplicated),
        added=tuple(added),
    )


def _any_within(sorted_values: Sequence[float], value: float, tolerance: float) -> bool:
    index = bisect.bisect_left(sorted_values, value - tolerance)
    return index < len(sorted_values) and sorted_values[index] <= value + tolerance


def stable_words(runs: Sequence[Sequence[Word]], tolerance: float = DEFAULT_TOLERANCE) -> list[Word]:
    """The words of ``runs[0]`` that every other run also yields (text + time, as above)."""
    if not runs:
        return []
    keep = set(range(len(runs[0])))
    for other in runs[1:]:
        keep &= {i for i, _ in pair_words(runs[0], other, tolerance)}
    return [w for i, w in enumerate(runs[0]) if i in keep]


def order_violations(
    results: Iterable[TranscriptResult], tolerance: float = 0.0
) -> list[tuple[TranscriptResult, TranscriptResult]]:
    """Consecutive finals of a channel where the later one starts before the earlier one ended."""
    last: dict[str | None, TranscriptResult] = {}
    out: list[tuple[TranscriptResult, TranscriptResult]] = []
    for result in results:
        if result.is_partial or not (result.words or result.text):
            continue
        previous = last.get(result.channel)
        if previous is not None and result.start < previous.end - tolerance:
            out.append((previous, result))
        words = [w for w in result.words if not w.is_punctuation]
        if any(b.start < a.start - tolerance for a, b in itertools.pairwise(words)):
            out.append((result, result))
        if previous is None or result.end >= previous.end:
            last[result.channel] = result
    return out

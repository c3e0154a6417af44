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
* a reference word without a partner is **changed** when the candidate has some other word, or a
  final result (even an empty one: the recogniser heard the audio and found nothing to say), within
  ``slot`` seconds - that audio was answered, differently - and **lost** when it has none (that
  audio produced nothing: the mark of audio that never reached the recogniser). The slot is 1.5 s
  by default because Whisper's word times near the start of a long window can be a second off;
  audio lost by a stream (a missed replay) is seconds of speech, far wider than the slot;
* an unpaired candidate within the tolerance of a reference word (or of a paired candidate) of the
  same text is **duplicated** - unless every such twin is in the same result, which makes it a
  recogniser's own repetition (**repeated**): a stream never adds words to a result, so the
  duplicates a stream makes are whole results delivered again; any other unpaired candidate is
  **added**; an added word that does not stand in for a changed reference word (within the slot) is
  **inserted**: a word the reference has nothing for at all.

Why "changed" is not "lost": a recogniser that hears replayed audio on a fresh session (its own
segmentation, voice-activity state and running context start again) does not always choose the same
words as on the first pass ("a beat" / "of the"). That variance belongs to the recogniser; the
stream's duty is that the audio is heard, once, at the right time. A fair reference is the set of
words that every fault-free run yields (:func:`stable_words`), and the byte-level tests check that
each connection receives every byte after the cut.

Recogniser loops: Whisper sometimes repeats a short phrase back to back inside one result
("5, 5, 5, 5", "ten of clubs. ten of clubs."), a different number of times on each decode of the
same audio. ``spoken_words(..., collapse_loops=True)`` keeps one copy of a phrase repeated back to
back *within one result*, on both sides of the comparison. A duplicate made by a stream (a final
delivered again after a reconnection) is a separate result, and still counts.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from beluga_voice.stt.model import TranscriptResult, Word, word_identity

DEFAULT_TOLERANCE = 0.5
DEFAULT_SLOT = 1.5
MAX_LOOP_WORDS = 4

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
    plain = word_identity(text).strip("'")
    return _NUMBERS.get(plain, plain)


def spoken_words(results: Iterable[TranscriptResult], *, collapse_loops: bool = False) -> list[Word]:
    """The pronounced words of the final results, in order (partials and punctuation left out)."""
    return final_words(results, collapse_loops=collapse_loops)[0]


def final_spans(results: Iterable[TranscriptResult]) -> list[tuple[float, float]]:
    """The time spans the final results answered, empty finals included."""
    return [(r.start, r.end) for r in results if r.is_final]


def final_words(
    results: Iterable[TranscriptResult], *, collapse_loops: bool = False
) -> tuple[list[Word], list[int]]:
    """:func:`spoken_words`, with the index of the final each word came from."""
    out: list[Word] = []
    groups: list[int] = []
    for index, result in enumerate(r for r in results if r.is_final):
        words = [w for w in result.words if not w.is_punctuation and normalize(w.text)]
        words = _collapse_loops(words) if collapse_loops else words
        out += words
        groups += [index] * len(words)
    return out, groups


def _collapse_loops(words: list[Word]) -> list[Word]:
    """One copy of any phrase (up to MAX_LOOP_WORDS words) repeated back to back."""
    kept: list[Word] = []
    for word in words:
        kept.append(word)
        for n in range(1, MAX_LOOP_WORDS + 1):
            if len(kept) >= 2 * n and [normalize(w.text) for w in kept[-n:]] == [
                normalize(w.text) for w in kept[-2 * n : -n]
            ]:
                del kept[-n:]
                break
    return kept


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
    repeated: tuple[Word, ...] = ()

    @property
    def ok(self) -> bool:
        """No reference word lost, none duplicated."""
        return not self.lost and not self.duplicated

    @property
    def changed_ratio(self) -> float:
        return len(self.changed) / self.reference_words if self.reference_words else 0.0

    @property
    def inserted(self) -> tuple[Word, ...]:
        """Added words that do not stand in for a changed reference word: words the fault-free run
        has nothing for at all ("5 5." in a pause), as opposed to a re-decoding ("it is" heard as
        "neither does"). Each changed reference word absorbs at most one added word within
        ``DEFAULT_SLOT`` seconds of its middle (nearest first)."""
        free = sorted(_middle(w) for w in self.changed)
        out: list[Word] = []
        for word in sorted(self.added, key=_middle):
            middle = _middle(word)
            nearest = min(range(len(free)), key=lambda i: abs(free[i] - middle), default=None)
            if nearest is not None and abs(free[nearest] - middle) <= DEFAULT_SLOT:
                free.pop(nearest)
            else:
                out.append(word)
        return tuple(out)

    def speaker_agreement(self, within: Sequence[tuple[float, float]] | None = None) -> float:
        """Share of paired, labelled words whose speaker follows the dominant label mapping.

        Labels are names, not identities ("0" here may be "1" there): each reference speaker is
        mapped to the candidate label most of its words carry, and the rest count as disagreements.
        ``within``: only reference words whose middle lies in one of these time ranges.
        """
        counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for ref, cand in self.paired:
            if within is not None and not any(start <= _middle(ref) < end for start, end in within):
                continue
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
            f"{len(self.changed)} changed [{words(self.changed)}], {len(self.added)} added [{words(self.added)}], "
            f"{len(self.repeated)} repeated within a result [{words(self.repeated)}]"
        )


def check_words(
    reference: Sequence[Word],
    candidate: Sequence[Word],
    tolerance: float = DEFAULT_TOLERANCE,
    slot: float = DEFAULT_SLOT,
    groups: Sequence[int] | None = None,
    heard: Sequence[tuple[float, float]] = (),
) -> WordCheck:
    """Account for every reference word in ``candidate`` (see the module docstring for the rules).

    ``groups[j]`` is the result candidate word ``j`` came from (see :func:`final_words`); without
    it every repetition counts as duplicated. ``heard``: the spans of the candidate's finals
    (:func:`final_spans`), which make a word without a counterpart changed rather than lost.
    """
    pairs = pair_words(reference, candidate, tolerance)
    paired_ref = {i for i, _ in pairs}
    paired_cand = {j for _, j in pairs}
    middles = sorted(_middle(w) for w in candidate)
    lost: list[Word] = []
    changed: list[Word] = []
    for i, word in enumerate(reference):
        if i not in paired_ref:
            middle = _middle(word)
            answered = _any_within(middles, middle, slot) or any(
                start - slot <= middle <= end + slot for start, end in heard
            )
            (changed if answered else lost).append(word)
    duplicated: list[Word] = []
    added: list[Word] = []
    repeated: list[Word] = []
    for j, word in enumerate(candidate):
        if j in paired_cand:
            continue
        text, middle = normalize(word.text), _middle(word)
        near = [
            other
            for other in (*reference, *(candidate[k] for k in paired_cand))
            if normalize(other.text) == text and abs(_middle(other) - middle) <= tolerance
        ]
        if not near:
            added.append(word)
            continue
        twins = [
            k
            for k, other in enumerate(candidate)
            if k != j and normalize(other.text) == text and abs(_middle(other) - middle) <= 2 * tolerance
        ]
        if groups is not None and twins and all(groups[k] == groups[j] for k in twins):
            repeated.append(word)
        else:
            duplicated.append(word)
    return WordCheck(
        reference_words=len(reference),
        paired=tuple((reference[i], candidate[j]) for i, j in pairs),
        lost=tuple(lost),
        changed=tuple(changed),
        duplicated=tuple(duplicated),
        added=tuple(added),
        repeated=tuple(repeated),
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

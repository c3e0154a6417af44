"""Online speaker clustering: consistent labels "0", "1", ... over a whole stream.

Each final result's turns are compared with the speakers met so far (cosine similarity of voice
prints to each speaker's duration-weighted mean print). A turn joins the most similar speaker if
the similarity clears ``threshold``; a turn of at least ``min_new_speaker`` seconds below it
starts a new speaker; a shorter one cannot (its print is too unreliable), so it joins the closest
speaker. Labels are given in order of first appearance and never change afterwards, since finals
already sent cannot be taken back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from beluga_voice.providers.local.diarization.turns import Turn
from beluga_voice.stt.model import Word

FloatArray = npt.NDArray[np.float32]

DEFAULT_THRESHOLD = 0.5  # CAM++ cosine; calibrated in docs/local-engine.md (resemblyzer's was 0.72)
UPDATE_MARGIN = 0.05  # a match must clear the threshold by this much to refine the speaker's print
MIN_NEW_SPEAKER_SECONDS = 0.5
MIN_TRUSTED_TURN_SECONDS = 0.8
WEAK_SPEAKER_SECONDS = 1.0  # a speaker heard for less than this is provisional
# CAM++ prints of phone speech spread more under 1.5 s (same-speaker cosine 5th percentile 0.34 at
# 1 s, 0.50 at 1.5 s): a shorter turn must be this much further below the threshold to start a speaker.
SHORT_TURN_SECONDS = 1.5
SHORT_TURN_MARGIN = 0.15


@dataclass
class _Speaker:
    total: FloatArray  # duration-weighted sum of prints
    seconds: float

    @property
    def centroid(self) -> FloatArray:
        out: FloatArray = self.total / max(float(np.linalg.norm(self.total)), 1e-8)
        return out


class SpeakerClustering:
    """The speakers of one stream."""

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        min_new_speaker: float = MIN_NEW_SPEAKER_SECONDS,
        max_speakers: int | None = None,
    ) -> None:
        self.threshold = threshold
        self.min_new_speaker = min_new_speaker
        self.max_speakers = max_speakers
        self._speakers: list[_Speaker] = []
        self._published: dict[str, str] = {}

    @property
    def count(self) -> int:
        return len(self._speakers)

    def label_words(self, words: Sequence[Word], turns: Sequence[Turn]) -> list[Word]:
        """``words`` with a speaker on every item (punctuation takes its turn's speaker)."""
        if not words:
            return []
        labels = self._label_turns(turns) if turns else []
        if not labels:
            fallback = str(max(self.count - 1, 0)) if self.count else self._new(None, 0.0)
            return [replace(w, speaker=self._public(fallback)) for w in words]
        out: list[Word] = []
        for word in words:
            if word.is_punctuation and out:
                out.append(replace(word, speaker=out[-1].speaker))
            else:
                out.append(replace(word, speaker=self._public(labels[_turn_of(word, turns)])))
        return out

    def _public(self, internal: str) -> str:
        """Labels as users see them: numbered in order of first appearance in the results."""
        return self._published.setdefault(internal, str(len(self._published)))

    def _label_turns(self, turns: Sequence[Turn]) -> list[str]:
        """Each turn long enough to trust is matched on its own (and may start a new speaker);
        shorter ones then take the closest speaker known; a result made only of short turns is
        judged as a whole."""
        if len(turns) > 1 and all(t.duration < MIN_TRUSTED_TURN_SECONDS for t in turns):
            whole = _mean([t.voice for t in turns], [t.duration for t in turns])  # judge them together
            seconds = sum(t.duration for t in turns)
            return [self._assign(whole, seconds, self._closest(whole))] * len(turns)
        labels: list[str | None] = []
        for turn in turns:
            if len(turns) == 1 or turn.duration >= MIN_TRUSTED_TURN_SECONDS:
                labels.append(self._assign(turn.voice, turn.duration, self._closest(turn.voice)))
            else:
                labels.append(None)
        return [
            label if label is not None else self._closest_known(t.voice)
            for label, t in zip(labels, turns, strict=True)
        ]

    def _closest(self, voice: FloatArray) -> tuple[int | None, float]:
        if not self._speakers:
            return None, -1.0
        similarities = [float(voice @ s.centroid) if s.total.size else 0.0 for s in self._speakers]
        best = int(np.argmax(similarities))
        return best, similarities[best]

    def _assign(self, voice: FloatArray, seconds: float, choice: tuple[int | None, float]) -> str:
        best, similarity = choice
        room = self.max_speakers is None or self.count < self.max_speakers
        if best is None:
            return self._new(voice, seconds)
        needed = self.threshold - (SHORT_TURN_MARGIN if seconds < SHORT_TURN_SECONDS else 0.0)
        if similarity < needed and seconds >= self.min_new_speaker:
            weak = [k for k, s in enumerate(self._speakers) if s.seconds < WEAK_SPEAKER_SECONDS]
            if weak:  # a speaker known only from a blip: its print was unreliable, let this one define it
                self._add(weak[0], voice, seconds)
                return str(weak[0])
            if room:
                return self._new(voice, seconds)
        if similarity >= self.threshold + UPDATE_MARGIN:  # only confident matches refine a print
            self._add(best, voice, seconds)
        return str(best)

    def _add(self, index: int, voice: FloatArray, seconds: float) -> None:
        speaker = self._speakers[index]
        speaker.total = (speaker.total if speaker.total.size else 0.0) + voice * seconds
        speaker.seconds += seconds

    def _new(self, voice: FloatArray | None, seconds: float) -> str:
        total = voice * max(seconds, 1e-3) if voice is not None else np.zeros(0, np.float32)  # no print yet
        self._speakers.append(_Speaker(total.astype(np.float32), seconds))
        return str(self.count - 1)

    def _closest_known(self, voice: FloatArray) -> str:
        best, _ = self._closest(voice)
        return str(best) if best is not None else self._new(voice, 0.0)


def _turn_of(word: Word, turns: Sequence[Turn]) -> int:
    """The turn that overlaps the word most (the nearest one if none does)."""

    def score(turn: Turn) -> float:
        overlap = min(word.end, turn.end) - max(word.start, turn.start)
        return overlap if overlap > 0 else overlap - 1e-3  # negative: the distance to the turn

    return max(range(len(turns)), key=lambda k: score(turns[k]))


def _mean(voices: Sequence[FloatArray], weights: Sequence[float]) -> FloatArray:
    total = np.sum([v * max(w, 1e-3) for v, w in zip(voices, weights, strict=True)], axis=0)
    out: FloatArray = (total / max(float(np.linalg.norm(total)), 1e-8)).astype(np.float32)
    return out

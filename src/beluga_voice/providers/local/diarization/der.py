"""Diarization error rate, scored as NIST md-eval does in spirit: frames of 10 ms, a collar around
every reference boundary left unscored, overlapping speech scored (a frame where two people speak
needs two speakers), the best one-to-one mapping of hypothesis to reference speakers.

Used by the tests and the benchmarks, so both measure the same thing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beluga_voice.stt.model import SpeakerTurn

FRAME = 0.01


@dataclass(frozen=True)
class DiarizationScore:
    """Seconds of scored reference speech and of each kind of error."""

    speech: float
    missed: float
    false_alarm: float
    confusion: float

    @property
    def der(self) -> float:
        return (self.missed + self.false_alarm + self.confusion) / self.speech if self.speech else 0.0

    @property
    def missed_rate(self) -> float:
        return self.missed / self.speech if self.speech else 0.0


def read_rttm(path: Path) -> list[SpeakerTurn]:
    """The SPEAKER lines of an RTTM file."""
    return parse_rttm(path.read_text())


def parse_rttm(text: str) -> list[SpeakerTurn]:
    """The SPEAKER lines of RTTM text (what ``beluga transcribe --format rttm`` writes)."""
    turns = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0] == "SPEAKER":
            start, duration = float(parts[3]), float(parts[4])
            turns.append(SpeakerTurn(parts[7], start, start + duration))
    return turns


def score(
    reference: Iterable[SpeakerTurn],
    hypothesis: Iterable[SpeakerTurn],
    duration: float,
    collar: float = 0.25,
    uem: tuple[float, float] | None = None,
) -> DiarizationScore:
    """Missed speech, false alarm and speaker confusion of ``hypothesis`` against ``reference``,
    scored only inside ``uem`` (start, end seconds: the annotated part) when given."""
    ref_turns, hyp_turns = list(reference), list(hypothesis)
    end = max([duration, *(t.end for t in ref_turns), *(t.end for t in hyp_turns)])
    frames = int(np.ceil(end / FRAME)) + 1
    ref_speakers = sorted({t.speaker for t in ref_turns})
    hyp_speakers = sorted({t.speaker for t in hyp_turns})
    ref = np.zeros((len(ref_speakers), frames), bool)
    hyp = np.zeros((len(hyp_speakers), frames), bool)
    scored = np.ones(frames, bool)
    if uem is not None:
        scored[: _frame(uem[0])] = False
        scored[_frame(uem[1]) :] = False
    for turn in ref_turns:
        ref[ref_speakers.index(turn.speaker), _frame(turn.start) : _frame(turn.end)] = True
        for edge in (turn.start, turn.end):
            scored[_frame(edge - collar) : _frame(edge + collar)] = False
    for turn in hyp_turns:
        hyp[hyp_speakers.index(turn.speaker), _frame(turn.start) : _frame(turn.end)] = True
    ref, hyp = ref[:, scored], hyp[:, scored]
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    matches = np.array([[int(np.sum(r & h)) for h in hyp] for r in ref]).reshape(len(ref), len(hyp))
    correct = _best_mapping(matches)
    missed = int(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = int(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = int(np.minimum(n_ref, n_hyp).sum()) - correct
    return DiarizationScore(
        speech=float(n_ref.sum()) * FRAME,
        missed=missed * FRAME,
        false_alarm=false_alarm * FRAME,
        confusion=confusion * FRAME,
    )


def _best_mapping(matches: np.ndarray) -> int:
    """The most frames a one-to-one speaker mapping gets right (exhaustive: few speakers)."""
    n_ref, n_hyp = matches.shape
    if n_ref == 0 or n_hyp == 0:
        return 0
    if n_ref <= n_hyp:
        return max(
            sum(int(matches[r, h]) for r, h in enumerate(chosen))
            for chosen in itertools.permutations(range(n_hyp), n_ref)
        )
    return max(
        sum(int(matches[r, h]) for h, r in enumerate(chosen))
        for chosen in itertools.permutations(range(n_ref), n_hyp)
    )


def _frame(seconds: float) -> int:
    return max(0, round(seconds / FRAME))

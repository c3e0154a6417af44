"""Reference data and scoring for the local engine benchmarks: real speech and WER.

Everything comes from .cache/data (scripts/fetch-data.sh): the pocketsphinx librivox and cards
utterances (two different speakers, with transcripts), the pyannote two-speaker call with its
RTTM (who spoke when) and STM (what was said), and 14 real AMI meeting excerpts (pyannote.audio's
test data: 60 s each, RTTM references, only the first 30 s annotated). Conversations with an exact reference are stitched
from the pocketsphinx utterances with pauses between turns. DER is scored by
``beluga_voice.providers.local.diarization.der``, the scorer the tests use.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from beluga_voice.audio import read_audio

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".cache" / "data"
RATE = 16000
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Utterance:
    name: str
    speaker: str
    text: str
    samples: FloatArray
    speech_start: float  # seconds within the file, by energy (independent of the engine's VAD)
    speech_end: float


@dataclass(frozen=True)
class Turn:
    speaker: str
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Recording:
    """Audio with who spoke when (``turns``) and what was said (``text``)."""

    name: str
    samples: FloatArray
    turns: tuple[Turn, ...]

    @property
    def text(self) -> str:
        return " ".join(t.text for t in self.turns)

    @property
    def duration(self) -> float:
        return self.samples.size / RATE


def speech_span(samples: FloatArray, floor_db: float = 35.0) -> tuple[float, float]:
    """First and last 10 ms frame within ``floor_db`` of the loudest frame: where speech is."""
    frames = samples[: samples.size - samples.size % 160].reshape(-1, 160)
    energy = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(energy >= energy.max() - floor_db)
    return float(loud[0] * 0.01), float((loud[-1] + 1) * 0.01)


def _transcripts(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"\s*<s>(.*)</s>\s*\((\S+)\)", line)
        if match:
            out[match.group(2)] = " ".join(match.group(1).split())
    return out


def pocketsphinx_utterances(corpus: str) -> list[Utterance]:
    """``corpus`` is "librivox" (one reader) or "cards" (another speaker)."""
    folder = DATA / corpus
    texts = _transcripts(folder / ("transcription" if corpus == "librivox" else "cards.transcription"))
    out = []
    for name, text in sorted(texts.items()):
        samples = read_audio(folder / f"{name}.wav").convert(RATE).samples[:, 0]
        start, end = speech_span(samples)
        out.append(Utterance(name, corpus, text, samples, start, end))
    return out


def as_recording(utterance: Utterance) -> Recording:
    turn = Turn(utterance.speaker, utterance.speech_start, utterance.speech_end, utterance.text)
    return Recording(utterance.name, utterance.samples, (turn,))


def pyannote_sample() -> Recording:
    """The 30 s two-speaker call; turns from its STM (text) — RTTM is read by :func:`pyannote_rttm`."""
    folder = DATA / "pyannote"
    samples = read_audio(folder / "sample.wav").convert(RATE).samples[:, 0]
    turns = []
    for line in (folder / "sample.stm").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6:
            turns.append(Turn(parts[2], float(parts[3]), float(parts[4]), parts[5]))
    return Recording("pyannote-sample", samples, tuple(turns))


def pyannote_rttm() -> list[Turn]:
    turns = []
    for line in (DATA / "pyannote" / "sample.rttm").read_text().splitlines():
        parts = line.split()
        start, duration = float(parts[3]), float(parts[4])
        turns.append(Turn(parts[7], start, start + duration, ""))
    return turns


@dataclass(frozen=True)
class Meeting:
    """A real meeting excerpt: the audio, who spoke when, and the annotated (scored) part."""

    recording: Recording
    uem: tuple[float, float]
    split: str  # "train" (trn*: the clips tuned on) or "development"/"test" (held out)


def ami_meetings() -> list[Meeting]:
    """The AMI excerpts of pyannote.audio's tests, in file-name order (train, then held out)."""
    folder = DATA / "ami"
    out: list[Meeting] = []
    for split in ("train", "development", "test"):
        uems = {}
        for line in (folder / f"debug.{split}.uem").read_text().splitlines():
            parts = line.split()
            if len(parts) == 4:
                uems[parts[0]] = (float(parts[2]), float(parts[3]))
        turns: dict[str, list[Turn]] = {}
        for line in (folder / f"debug.{split}.rttm").read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 8 and parts[0] == "SPEAKER":
                start = float(parts[3])
                turns.setdefault(parts[1], []).append(Turn(parts[7], start, start + float(parts[4]), ""))
        for uri in sorted(uems):
            samples = read_audio(folder / f"{uri}.wav").convert(RATE).samples[:, 0]
            recording = Recording(f"ami-{uri}", samples, tuple(turns.get(uri, [])))
            out.append(Meeting(recording, uems[uri], split))
    return out


def stitched_conversation(name: str, order: Sequence[Utterance], seed: int) -> Recording:
    """Utterances one after another with 0.7-1.5 s pauses (room noise kept: the files' own edges)."""
    rng = random.Random(seed)
    pieces: list[FloatArray] = []
    turns: list[Turn] = []
    position = 0.0
    for utterance in order:
        pause = np.zeros(int(rng.uniform(0.7, 1.5) * RATE), np.float32)
        pieces += [pause, utterance.samples]
        position += pause.size / RATE
        turns.append(
            Turn(
                utterance.speaker,
                position + utterance.speech_start,
                position + utterance.speech_end,
                utterance.text,
            )
        )
        position += utterance.samples.size / RATE
    pieces.append(np.zeros(RATE, np.float32))
    return Recording(name, np.concatenate(pieces), tuple(turns))


def conversations() -> list[Recording]:
    reader, cards = pocketsphinx_utterances("librivox"), pocketsphinx_utterances("cards")
    alternating = list(itertools.chain.from_iterable(zip(reader, cards, strict=True)))
    shuffled = alternating[:]
    random.Random(7).shuffle(shuffled)  # same speaker twice in a row happens here
    return [
        stitched_conversation("stitched-alternating", alternating, seed=1),
        stitched_conversation("stitched-shuffled", shuffled, seed=2),
    ]


# -- text normalisation and WER --------------------------------------------------------------

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}


def _number_words(number: int) -> str:
    if number < 20:
        return _ONES[number]
    if number < 100:
        return _TENS[number // 10] + ("" if number % 10 == 0 else " " + _ONES[number % 10])
    if number < 1000:
        rest = number % 100
        return _ONES[number // 100] + " hundred" + ("" if rest == 0 else " " + _number_words(rest))
    return " ".join(_ONES[int(d)] for d in str(number))


def normalize(text: str) -> list[str]:
    """Lower case, no punctuation, digits and common abbreviations spelled out — both sides alike."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"\d+", lambda m: " " + _number_words(int(m.group())) + " ", text)
    words = re.sub(r"[^a-z' ]+", " ", text).split()
    return [w for token in words for w in _ABBREVIATIONS.get(token.strip("'"), token.strip("'")).split() if w]


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp_word in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return previous[-1]


@dataclass
class WordErrors:
    errors: int = 0
    words: int = 0

    def add(self, reference: str, hypothesis: str) -> None:
        ref, hyp = normalize(reference), normalize(hypothesis)
        self.errors += edit_distance(ref, hyp)
        self.words += len(ref)

    @property
    def rate(self) -> float:
        return self.errors / max(self.words, 1)

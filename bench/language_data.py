"""Real speech in five languages for the language tests and benchmarks: Asterisk's IVR prompts.

scripts/fetch-data.sh unpacks Debian's asterisk-core-sounds-<lang>(-wav) packages into
.cache/data/asterisk/<lang>/: one professional voice per language reading telephone prompts (8 kHz),
with the transcripts of the package documentation (``name: text`` lines). A file that switches
language is stitched from them with an exact reference: which language is spoken when, and what.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from num2words import num2words

from beluga_voice.audio import read_audio
from bench.local_data import RATE, FloatArray, edit_distance, speech_span

ROOT = Path(__file__).resolve().parent.parent
ASTERISK = ROOT / ".cache" / "data" / "asterisk"
# Folder -> the locale the stream asks for (the service's codes: the Spanish voice is Mexican, the
# French one Canadian) and num2words' language for spelling numbers out.
LOCALES = {"en": "en-US", "es": "es-US", "fr": "fr-CA", "it": "it-IT", "ru": "ru-RU"}
_NUMBER_LANGUAGES = {"en": "en", "es": "es", "fr": "fr", "it": "it", "ru": "ru"}


@dataclass(frozen=True)
class Prompt:
    """One recorded prompt: its language folder (``"fr"``), name, reference text and audio at 16 kHz."""

    language: str
    name: str
    text: str
    samples: FloatArray
    speech_start: float
    speech_end: float

    @property
    def locale(self) -> str:
        return LOCALES[self.language]

    @property
    def speech(self) -> float:
        return self.speech_end - self.speech_start


@dataclass(frozen=True)
class Stretch:
    """A stretch of one language in a stitched recording."""

    language: str
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Switching:
    """A recording that changes language, with the exact reference."""

    samples: FloatArray
    stretches: tuple[Stretch, ...]


def available() -> bool:
    return all((ASTERISK / lang / "transcript.txt").is_file() for lang in LOCALES)


def transcripts(language: str) -> dict[str, str]:
    """Prompt name -> text, top-level prompts only (no digits/, letters/...), tones and blanks left out."""
    out: dict[str, str] = {}
    path = ASTERISK / language / "transcript.txt"
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        name, sep, text = line.partition(":")
        name, text = name.strip(), " ".join(text.split())
        if not sep or name.startswith(";") or "/" in name or not text or "[" in text or "(" in text:
            continue
        if (ASTERISK / language / f"{name}.wav").is_file():
            out[name] = text
    return out


def prompts(
    language: str, *, min_speech: float = 0.0, limit: int | None = None, seed: int = 0
) -> list[Prompt]:
    """Prompts of a language with at least ``min_speech`` seconds of speech; ``limit`` picks a
    reproducible random sample (sorted by name)."""
    texts = transcripts(language)
    names = sorted(texts)
    if limit is not None:
        random.Random(f"{language}-{seed}").shuffle(names)
    out: list[Prompt] = []
    for name in names:
        samples = read_audio(ASTERISK / language / f"{name}.wav").convert(RATE, 1).samples[:, 0]
        start, end = speech_span(samples)
        if end - start < min_speech:
            continue
        out.append(Prompt(language, name, texts[name], np.ascontiguousarray(samples), start, end))
        if limit is not None and len(out) >= limit:
            break
    return sorted(out, key=lambda p: p.name)


def switching(order: Sequence[Sequence[Prompt]], pause: float = 1.0) -> Switching:
    """Groups of prompts one after another (one group per language), ``pause`` seconds apart."""
    gap = np.zeros(round(pause * RATE), np.float32)
    pieces: list[FloatArray] = [gap]
    stretches: list[Stretch] = []
    position = pause
    for group in order:
        for prompt in group:
            stretches.append(
                Stretch(
                    prompt.language,
                    position + prompt.speech_start,
                    position + prompt.speech_end,
                    prompt.text,
                )
            )
            pieces += [prompt.samples, gap]
            position += prompt.samples.size / RATE + pause
    return Switching(np.concatenate(pieces), tuple(stretches))


def labelled_right(stretches: Sequence[Stretch], labels: Sequence[tuple[float, float, str | None]]) -> float:
    """Share of the reference speech covered by results labelled with its language.

    ``labels`` are (start, end, locale) of final results; speech no result covers counts as wrong.
    """
    total = sum(s.end - s.start for s in stretches)
    right = 0.0
    for stretch in stretches:
        for start, end, locale in labels:
            if locale == LOCALES[stretch.language]:
                right += max(0.0, min(end, stretch.end) - max(start, stretch.start))
    return right / total if total else 0.0


def normalize(text: str, language: str) -> list[str]:
    """Lower case, accents and punctuation removed, numbers spelled out in the language — both sides alike."""
    # accents dropped: the Spanish transcripts are written without them ("numero", "contrasena")
    text = unicodedata.normalize("NFD", text.lower().replace("’", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(
        r"\d+", lambda m: " " + num2words(int(m.group()), lang=_NUMBER_LANGUAGES[language]) + " ", text
    )
    text = text.replace("-", " ")
    return re.sub(r"[^\w' ]+", " ", text).replace("_", " ").split()


class LanguageWer:
    """Word errors over many utterances of one language."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.errors = 0
        self.words = 0

    def add(self, reference: str, hypothesis: str) -> None:
        ref, hyp = normalize(reference, self.language), normalize(hypothesis, self.language)
        self.errors += edit_distance(ref, hyp)
        self.words += len(ref)

    @property
    def rate(self) -> float:
        return self.errors / self.words if self.words else 0.0

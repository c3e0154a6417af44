"""`beluga transcribe` end to end with the real embedded engine on real speech.

The terminal behaviour (progress bar, live partials) is checked with stderr on a real pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beluga_voice.audio.reader import read_audio
from beluga_voice.cli.main import main

pytestmark = pytest.mark.model

BELUGA = str(Path(sys.executable).parent / "beluga")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out, captured.err


def test_text_of_a_real_utterance(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, err = run(
        ["transcribe", str(data_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0930.wav")], capsys
    )
    assert "might even have been made" in " ".join(words(out))
    assert out.count("\n") == 1
    assert err == "", "no progress bar or chatter when stderr is not a terminal"


@pytest.fixture(scope="module")
def cards(data_dir: Path) -> Path:
    return data_dir / "cards" / "005.wav"  # "eight of spades four of clubs seven of hearts", 3.5 s


def test_json_follows_the_documented_schema(cards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = run(["transcribe", str(cards), "--format", "json"], capsys)
    document = json.loads(out)
    assert set(document) == {"provider", "duration", "language_code", "text", "segments", "speaker_turns"}
    assert document["speaker_turns"] == [], "who spoke when only with --speakers"
    assert document["provider"] == "local"
    assert document["duration"] == pytest.approx(3.5025, abs=1e-3)
    assert {"spades", "hearts"} <= set(words(document["text"]))
    for segment in document["segments"]:
        for word in segment["words"]:
            assert 0 <= word["start"] <= word["end"] <= document["duration"]


def test_jsonl_streams_partials_and_finals_that_add_up_to_the_text(
    cards: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = run(["transcribe", str(cards), "--format", "jsonl"], capsys)
    events = [json.loads(line) for line in out.splitlines()]
    assert events and not events[-1]["is_partial"]
    finals = " ".join(e["text"] for e in events if not e["is_partial"])
    assert {"spades", "hearts"} <= set(words(finals))
    assert all(
        {"result_id", "is_partial", "start", "end", "text", "words", "alternatives"} <= set(e) for e in events
    )


def test_subtitles_to_a_file(cards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "cards.srt"
    out, _ = run(["transcribe", str(cards), "--format", "srt", "-o", str(target)], capsys)
    assert out == "", "the transcript went to the file"
    text = target.read_text()
    stamps = re.findall(r"(\d\d):(\d\d):(\d\d)[,.](\d{3}) --> (\d\d):(\d\d):(\d\d)[,.](\d{3})", text)
    assert stamps
    for stamp in stamps:
        h, m, s, ms, h2, m2, s2, ms2 = (int(x) for x in stamp)
        start, end = h * 3600 + m * 60 + s + ms / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        assert 0 <= start <= end <= 3.6
    assert {"spades", "hearts"} <= set(words(text))
    assert text.startswith("1\n00:00:0")


def test_raw_8khz_telephone_pcm_from_a_pipe(data_dir: Path) -> None:
    path = data_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0930.wav"
    telephone = read_audio(path).convert(8000, 1)
    done = subprocess.run(
        [BELUGA, "transcribe", "-", "--raw", "--sample-rate", "8000"],
        input=telephone.to_pcm16(),
        capture_output=True,
        timeout=300,
        env=ENV,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "might even have been made" in " ".join(words(done.stdout.decode()))


def test_silence_says_no_speech_was_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(32000, dtype=np.float32), 16000)
    out, err = run(["transcribe", str(silent)], capsys)
    assert out == ""
    assert err == f"beluga: note: no speech found in {silent}\n"
    target = tmp_path / "silence.txt"
    run(["transcribe", str(silent), "-o", str(target)], capsys)
    assert target.read_text() == "", "an empty transcript is still written"


def run_with_terminal_stderr(argv: list[str]) -> tuple[int, str, str, float]:
    """Run beluga with stdout on a pipe and stderr on a pseudo-terminal, as in an interactive shell."""
    master, slave = pty.openpty()
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=ENV)
    os.close(slave)
    terminal: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO once the child has closed the terminal
                return
            if not data:
                return
            terminal.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    stdout, _ = process.communicate(timeout=600)
    elapsed = time.monotonic() - started
    reader.join(timeout=10)
    os.close(master)
    return process.returncode, stdout.decode(), b"".join(terminal).decode(errors="replace"), elapsed


def test_long_file_shows_a_progress_bar_on_a_terminal_and_writes_rttm(data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "sample.rttm"
    code, stdout, terminal, _ = run_with_terminal_stderr(
        [
            BELUGA,
            "transcribe",
            str(data_dir / "pyannote" / "sample.wav"),
            "--speakers",
            "-f",
            "rttm",
            "-o",
            str(target),
        ]
    )
    assert code == 0, terminal
    assert stdout == ""
    assert re.search(r"sample\.wav \[[#-]{24}\] +\d+% \d:\d\d/0:30", terminal), terminal
    assert terminal.endswith("\r\x1b[K"), "the bar is cleared at the end"
    turns = [line.split() for line in target.read_text().splitlines()]
    assert turns and all(t[0] == "SPEAKER" and t[1] == "sample" for t in turns)
    reference = [line.split() for line in (data_dir / "pyannote" / "sample.rttm").read_text().splitlines()]

    def covered(spans: list[list[str]]) -> set[int]:
        return {
            tick
            for s in spans
            for tick in range(int(float(s[3]) * 10), int((float(s[3]) + float(s[4])) * 10))
        }

    assert len(covered(turns) & covered(reference)) >= 0.7 * len(covered(reference)), (
        "speech found where people speak"
    )


def test_realtime_paces_the_file_shows_partials_and_streams_finals(data_dir: Path) -> None:
    path = data_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0930.wav"
    duration = read_audio(path).duration
    code, stdout, terminal, elapsed = run_with_terminal_stderr(
        [BELUGA, "transcribe", str(path), "--realtime"]
    )
    assert code == 0, terminal
    assert elapsed >= duration, "fed no faster than real time"
    assert "might even have been made" in " ".join(words(stdout))
    partials = [p for p in terminal.split("\r") if p.strip("\x1b[K")]
    assert partials, "partials appear on the terminal while audio plays"
    assert terminal.endswith("\r\x1b[K"), "and the line is cleared when finals arrive"

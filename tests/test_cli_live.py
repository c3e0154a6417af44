"""Live input at the command line, end to end: `beluga transcribe -` fed through a real pipe at
speaking pace, and `beluga listen` on a stand-in microphone, both with the real embedded engine.

"Live" is checked structurally, not by timing: the writer keeps the pipe open until the first final
is printed, so a command that waited for the end of its input would never print it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soxr

from beluga_voice.audio.pcm import float_to_pcm16
from beluga_voice.audio.reader import read_audio

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
BELUGA = [sys.executable, "-m", "beluga_voice.cli.main"]
FIRST = "he might even have been made amiable himself"  # librivox 0930, 3.3 s
SECOND = "eight of spades four of clubs seven of hearts"  # cards 005, 3.5 s
WAIT = 120.0  # generous bound for a busy machine; a passing run takes a few seconds


DIGITS = dict(
    zip("123456789", ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"], strict=True)
)


def words(text: str) -> list[str]:
    return [DIGITS.get(w, w) for w in re.findall(r"[a-z0-9']+", text.lower())]


def shares_words(text: str, reference: str, share: float = 0.5) -> bool:
    """Whether ``text`` is recognisably ``reference`` (a tiny model's words vary with the cut)."""
    heard = set(words(text))
    expected = set(words(reference))
    return len(heard & expected) >= share * len(expected)


@pytest.fixture(scope="module")
def utterances(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Two real utterances (16 kHz mono float), each followed by a pause that ends it."""
    silence = np.zeros(int(1.5 * 16000), dtype=np.float32)
    first = read_audio(data_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0930.wav")
    second = read_audio(data_dir / "cards" / "005.wav")
    return (
        np.concatenate([first.samples[:, 0], silence]),
        np.concatenate([second.samples[:, 0], silence]),
    )


def streaming_wav_header(rate: int, channels: int) -> bytes:
    """A header as `ffmpeg -f wav -` writes to a pipe: unknown sizes (0xFFFFFFFF) and a LIST chunk."""
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    info = b"INFOISFT" + struct.pack("<I", 14) + b"Lavf61.7.100\x00\x00"
    return (
        b"RIFF\xff\xff\xff\xffWAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"LIST"
        + struct.pack("<I", len(info))
        + info
        + b"data\xff\xff\xff\xff"
    )


def as_pcm(samples: np.ndarray, rate: int, channels: int) -> bytes:
    """16 kHz mono float speech as s16le at ``rate`` with ``channels`` (the same voice in each)."""
    resampled = soxr.resample(samples, 16000, rate) if rate != 16000 else samples
    return float_to_pcm16(np.repeat(resampled[:, None], channels, axis=1) * 0.9)


class Live:
    """A CLI process with stdin on a pipe that we write at a chosen pace, and stdout read line by line."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, stdin: bool = True) -> None:
        self.process = subprocess.Popen(
            BELUGA + argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env or ENV,
        )
        self.lines: list[str] = []
        self.written = 0
        self._arrived = threading.Condition()
        self._stdout = threading.Thread(target=self._read_stdout, daemon=True)
        self._stdout.start()
        self.stderr = b""
        self._stderr = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._arrived:
                self.lines.append(raw.decode())
                self._arrived.notify_all()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()

    def write(self, data: bytes, bytes_per_second: float, speed: float = 2.0) -> None:
        """Write ``data`` in 100 ms pieces, ``speed`` times faster than real time."""
        assert self.process.stdin is not None
        piece = int(bytes_per_second / 10) // 4 * 4
        started = time.monotonic()
        for offset in range(0, len(data), piece):
            self.process.stdin.write(data[offset : offset + piece])
            self.process.stdin.flush()
            self.written += len(data[offset : offset + piece])
            due = started + (offset + piece) / bytes_per_second / speed
            time.sleep(max(0.0, due - time.monotonic()))

    def write_until(
        self, silence_piece: bytes, seconds_per_piece: float, seen: Callable[[list[str]], bool]
    ) -> bool:
        """Keep the pipe open, sending silence at real time, until ``seen(lines)``; False on timeout."""
        assert self.process.stdin is not None
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with self._arrived:
                if seen(self.lines):
                    return True
                self._arrived.wait(timeout=seconds_per_piece)
            self.process.stdin.write(silence_piece)
            self.process.stdin.flush()
            self.written += len(silence_piece)
        return False

    def all_read(self) -> bool:
        """Wait until the command has taken everything written to the pipe (False on timeout)."""
        assert self.process.stdin is not None
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            unread = struct.unpack("i", fcntl.ioctl(self.process.stdin, termios.FIONREAD, b"\0" * 4))[0]
            if unread == 0:
                return True
            time.sleep(0.05)
        return False

    def wait_for(self, seen: Callable[[list[str]], bool]) -> bool:
        deadline = time.monotonic() + WAIT
        with self._arrived:
            while not seen(self.lines):
                if not self._arrived.wait(timeout=max(0.0, deadline - time.monotonic())):
                    return seen(self.lines)
        return True

    def finish(self, close_stdin: bool = True) -> tuple[int, str, str]:
        if close_stdin and self.process.stdin is not None:
            self.process.stdin.close()
        code = self.process.wait(timeout=WAIT)
        self._stdout.join(timeout=10)
        self._stderr.join(timeout=10)
        return code, "".join(self.lines), self.stderr.decode(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def live_runs() -> Iterator[list[Live]]:
    runs: list[Live] = []
    yield runs
    for run in runs:
        run.kill()


def first_final_text(lines: list[str]) -> bool:
    return any(line.strip() for line in lines)


def first_final_jsonl(lines: list[str]) -> bool:
    return any(not json.loads(line)["is_partial"] for line in lines)


def test_wav_from_a_pipe_prints_each_final_while_the_writer_is_still_writing(
    utterances: tuple[np.ndarray, np.ndarray], live_runs: list[Live]
) -> None:
    # What `ffmpeg -i call.mp3 -ac 2 -ar 44100 -f wav - | beluga transcribe -` sends: mixed and resampled here.
    rate, channels = 44100, 2
    run = Live(["transcribe", "-"])
    live_runs.append(run)
    first, second = (as_pcm(u, rate, channels) for u in utterances)
    run.write(streaming_wav_header(rate, channels) + first, rate * channels * 2)
    silence = bytes(rate * channels * 2 // 10)
    assert run.write_until(silence, 0.1, first_final_text), "no final while the input was still open"
    assert shares_words(run.lines[0], FIRST), run.lines
    run.write(second, rate * channels * 2)
    code, out, err = run.finish()
    assert code == 0, err
    assert err == ""
    finals = out.splitlines()
    assert len(finals) >= 2 and shares_words(" ".join(finals[1:]), SECOND), out


def test_raw_pcm_from_a_pipe_streams_jsonl_events_as_they_arrive(
    utterances: tuple[np.ndarray, np.ndarray], live_runs: list[Live]
) -> None:
    # `arecord -f S16_LE -r 8000 -c 1 -t raw | beluga transcribe - --raw --sample-rate 8000 -f jsonl`
    rate = 8000
    run = Live(["transcribe", "-", "--raw", "--sample-rate", str(rate), "--format", "jsonl"])
    live_runs.append(run)
    first, second = (as_pcm(u, rate, 1) for u in utterances)
    run.write(first, rate * 2)
    assert run.write_until(bytes(rate * 2 // 10), 0.1, first_final_jsonl), "no final while input was open"
    run.write(second, rate * 2)
    code, out, err = run.finish()
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    finals = [e for e in events if not e["is_partial"]]
    assert shares_words(finals[0]["text"], FIRST) and shares_words(
        " ".join(e["text"] for e in finals), SECOND
    )
    assert all(e["start"] <= e["end"] for e in events)
    assert finals[-1]["end"] <= run.written / (rate * 2), "times are seconds of the audio sent"
    assert finals[-1]["start"] >= len(first) / (rate * 2), "the second utterance comes after the first"


def test_ctrl_c_stops_reading_and_prints_the_finals_of_the_audio_already_sent(
    utterances: tuple[np.ndarray, np.ndarray], live_runs: list[Live]
) -> None:
    rate = 16000
    run = Live(["transcribe", "-"])
    live_runs.append(run)
    first, second = (as_pcm(u, rate, 1) for u in utterances)
    run.write(streaming_wav_header(rate, 1) + first, rate * 2)
    assert run.write_until(bytes(rate * 2 // 10), 0.1, first_final_text)
    run.write(second[: int(2.2 * rate) * 2], rate * 2)  # "eight of spades four of..." then Ctrl-C
    assert run.all_read()
    time.sleep(0.3)  # from the pipe to the provider
    run.process.send_signal(signal.SIGINT)
    # The writer keeps the pipe open (as `arecord` would until it gets its own Ctrl-C).
    code, out, err = run.finish(close_stdin=False)
    assert code == 130, err
    assert err == "", "no traceback, no message: the transcript is the answer"
    lines = out.splitlines()
    assert shares_words(lines[0], FIRST)
    assert "spades" in words(" ".join(lines[1:])), f"the cut-off utterance is flushed as a final: {out!r}"


def test_ctrl_c_before_the_header_is_complete_just_ends(live_runs: list[Live]) -> None:
    run = Live(["transcribe", "-"])
    live_runs.append(run)
    assert run.process.stdin is not None
    run.process.stdin.write(streaming_wav_header(16000, 1)[:20])
    run.process.stdin.flush()
    assert run.all_read(), "the command reads the header as it arrives"
    run.process.send_signal(signal.SIGINT)  # while it waits for the rest of the header
    code, out, err = run.finish(close_stdin=False)
    assert (code, out, err) == (130, "", ""), "no error about a header the user chose not to send"


def test_a_bad_header_is_one_line_naming_the_bytes_and_the_fix() -> None:
    done = subprocess.run(
        [*BELUGA, "transcribe", "-"],
        input=b"ID3\x04\x00" + bytes(100),
        capture_output=True,
        env=ENV,
        timeout=WAIT,
    )
    assert done.returncode == 1
    assert done.stdout == b""
    message = done.stderr.decode()
    assert message.count("\n") == 1 and message.startswith("beluga: error: <stdin>: is not a WAV stream")
    assert "b'ID3\\x04" in message and "--raw --sample-rate HZ" in message and "ffmpeg" in message


def test_a_wav_header_at_96_khz_names_the_rate() -> None:
    header = streaming_wav_header(96000, 1)
    done = subprocess.run(
        [*BELUGA, "transcribe", "-"], input=header + bytes(9600), capture_output=True, env=ENV, timeout=WAIT
    )
    assert done.returncode == 1
    assert done.stderr.decode() == (
        "beluga: error: <stdin>: sample rate 96000 Hz is outside 8000-48000 Hz; resample the audio "
        "(e.g. `sox in.wav -r 16000 out.wav`) or declare the right rate.\n"
    )


def test_raw_input_cut_mid_frame_is_transcribed_then_reported(data_dir: Path) -> None:
    stereo = as_pcm(read_audio(data_dir / "cards" / "005.wav").samples[:, 0], 16000, 2)
    done = subprocess.run(
        [*BELUGA, "transcribe", "-", "--raw", "--channels", "2"],
        input=stereo + b"\x01\x02\x03",
        capture_output=True,
        env=ENV,
        timeout=WAIT,
    )
    assert done.returncode == 1
    assert shares_words(done.stdout.decode(), SECOND), "the whole frames are transcribed first"
    err = done.stderr.decode()
    assert err.count("\n") == 1
    assert (
        "<stdin>: ended 3 byte(s) into a frame" in err and "2-channel 16-bit" in err and "--channels" in err
    )


# -- beluga listen ---------------------------------------------------------------------------------

FAKE_SOUNDDEVICE = '''
"""A stand-in for sounddevice: one input device that "hears" a recording, at real time."""
import os, threading, time
import numpy as np, soundfile, soxr

RATE = 48000  # like most laptop microphones; the command must resample
PLAYED = os.environ["FAKE_MIC_RECORDING"]
LOG = os.environ["FAKE_MIC_LOG"]

class PortAudioError(Exception):
    pass

def query_devices(device=None, kind=None):
    return {"name": "Fake microphone", "max_input_channels": 1, "default_samplerate": float(RATE)}

def _log(line):
    with open(LOG, "a") as log:
        log.write(line + "\\n")

class RawInputStream:
    def __init__(self, samplerate, channels, dtype, blocksize, device, callback):
        if samplerate != RATE or channels != 1 or dtype != "int16":
            raise PortAudioError(f"Invalid sample rate or format: {samplerate} Hz, {channels}, {dtype}")
        self.blocksize, self.callback = blocksize, callback
        speech, rate = soundfile.read(PLAYED, dtype="float32")
        self.audio = (soxr.resample(speech, rate, RATE) * 32767).astype("<i2")
        self.running = False

    def start(self):
        self.running = True
        self.thread = threading.Thread(target=self._play, daemon=True)
        self.thread.start()
        _log("started")

    def _play(self):
        started, position = time.monotonic(), 0
        while self.running:
            block = self.audio[position : position + self.blocksize]
            block = np.concatenate([block, np.zeros(self.blocksize - len(block), "<i2")])  # then silence
            self.callback(memoryview(block.tobytes()), self.blocksize, None, None)
            position += self.blocksize
            time.sleep(max(0.0, started + position / RATE - time.monotonic()))

    def stop(self):
        self.running = False
        _log("stopped")

    def close(self):
        _log("closed")
'''


@pytest.fixture
def fake_microphone(tmp_path: Path, data_dir: Path) -> tuple[dict[str, str], Path]:
    """An environment whose `sounddevice` is the stand-in, playing the two utterances."""
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "sounddevice.py").write_text(FAKE_SOUNDDEVICE)
    recording = tmp_path / "spoken.wav"
    first = read_audio(data_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0930.wav")
    pause = np.zeros((24000, 1), dtype=np.float32)
    import soundfile as sf

    sf.write(recording, np.concatenate([first.samples, pause]), 16000)
    log = tmp_path / "device.log"
    env = {
        **ENV,
        "PYTHONPATH": f"{tmp_path / 'fake'}{os.pathsep}{ROOT / 'src'}",
        "FAKE_MIC_RECORDING": str(recording),
        "FAKE_MIC_LOG": str(log),
    }
    return env, log


def test_listen_prints_finals_as_they_are_spoken_and_ctrl_c_ends_cleanly(
    fake_microphone: tuple[dict[str, str], Path], live_runs: list[Live]
) -> None:
    env, log = fake_microphone
    run = Live(["listen", "--format", "jsonl"], env=env, stdin=False)
    live_runs.append(run)
    assert run.wait_for(first_final_jsonl), f"nothing heard: {run.stderr!r}"
    run.process.send_signal(signal.SIGINT)
    code, out, err = run.finish()
    assert code == 0, err
    assert err == ""
    finals = [e for e in map(json.loads, out.splitlines()) if not e["is_partial"]]
    assert shares_words(finals[0]["text"], FIRST)
    assert log.read_text().split() == ["started", "stopped", "closed"], "the microphone is released"


def test_listen_without_the_mic_extra_names_the_install_command(tmp_path: Path) -> None:
    (tmp_path / "sounddevice.py").write_text("raise ImportError('No module named sounddevice')\n")
    env = {**ENV, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT / 'src'}"}
    done = subprocess.run([*BELUGA, "listen"], capture_output=True, env=env, timeout=WAIT)
    assert done.returncode == 2
    assert done.stderr.decode() == (
        "beluga: error: microphone input needs the 'mic' extra; install it with "
        "`pip install 'beluga-voice[mic]'`\n"
    )


def test_listen_without_a_device_says_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "sounddevice.py").write_text(
        "class PortAudioError(Exception): pass\n"
        "def query_devices(device=None, kind=None):\n"
        "    raise PortAudioError('Error querying device -1')\n"
    )
    env = {**ENV, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT / 'src'}"}
    done = subprocess.run([*BELUGA, "listen"], capture_output=True, env=env, timeout=WAIT)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert err.count("\n") == 1
    assert "no microphone: the default input device is not available (Error querying device -1)" in err
    assert "python -m sounddevice" in err

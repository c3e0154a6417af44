"""`beluga transcribe` with bad input: the exit code and one clear line naming the file or value and the fix.

Every case here must fail before a provider (and so a model) is created; the last test proves it
in a fresh interpreter.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beluga_voice.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "hello.wav"
    t = np.arange(16000) / 16000
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert lines[0].startswith("beluga: error: ")
    assert "Traceback" not in err
    return lines[0]


def fails(argv: list[str], capsys: pytest.CaptureFixture[str], code: int, *fragments: str) -> str:
    got, out, err = run(argv, capsys)
    line = one_error_line(err)
    assert got == code, line
    assert out == "", "nothing on stdout when the run fails"
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} missing from {line!r}"
    return line


# --- bad audio (runtime errors, exit 1) ------------------------------------------------------------


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.wav"
    fails(["transcribe", str(missing)], capsys, 1, f"{missing}: no such file", "check the path")


def test_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A folder is a batch of recordings (tests/test_batch_cli.py): one transcript each, into a folder.
    fails(["transcribe", str(tmp_path)], capsys, 2, f"folder {tmp_path} gives one transcript", "--output-dir")


def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    fails(["transcribe", str(empty)], capsys, 1, f"{empty}: is empty (0 bytes)")


def test_corrupt_wav(wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav.write_bytes(wav.read_bytes()[:30])  # the header cut in half
    fails(
        ["transcribe", str(wav)],
        capsys,
        1,
        f"{wav}: cannot read audio: not a readable WAV/FLAC/OGG file",
        f"ffmpeg -i {wav} -ar 16000 -ac 1 out.wav",
    )


def test_text_file_renamed_to_wav(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.wav"
    notes.write_text("meeting notes, not audio\n" * 20)
    fails(["transcribe", str(notes)], capsys, 1, f"{notes}: cannot read audio")


def test_sample_rate_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    low = tmp_path / "low.wav"
    sf.write(low, np.zeros(4000), 4000)
    fails(
        ["transcribe", str(low)],
        capsys,
        1,
        f"{low}: sample rate 4000 Hz is outside 8000-48000 Hz",
        "resample",
    )


def test_too_many_channels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    surround = tmp_path / "surround.flac"
    sf.write(surround, np.zeros((1600, 4)), 16000)
    fails(["transcribe", str(surround)], capsys, 1, f"{surround}: 4 channels is not supported", "mix down")


def test_truncated_raw_pcm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "call.pcm"
    raw.write_bytes(b"\x01\x00" * 8000 + b"\x01")
    fails(
        ["transcribe", str(raw), "--raw"],
        capsys,
        1,
        f"{raw}: 16001 bytes is not a whole number of 1-channel 16-bit frames",
        "truncated or not s16le",
    )


def test_stereo_raw_pcm_with_half_a_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "call.pcm"
    raw.write_bytes(b"\0" * 4002)
    fails(["transcribe", str(raw), "--raw", "--channels", "2"], capsys, 1, "2-channel 16-bit frames")


def test_empty_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    fails(["transcribe", "-"], capsys, 1, "<stdin>: is empty (0 bytes)")


def test_garbage_on_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\x00\x01" * 500)))
    fails(["transcribe", "-"], capsys, 1, "<stdin>: is not a WAV stream", "--raw --sample-rate")


# --- bad command lines (usage errors, exit 2) ------------------------------------------------------


def test_unknown_provider(wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails(
        ["transcribe", str(wav), "--provider", "whisperx"],
        capsys,
        2,
        "unknown provider 'whisperx'; choose one of: ",
        "aws",
        "local",
    )


def test_bad_format(wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails(
        ["transcribe", str(wav), "--format", "docx"],
        capsys,
        2,
        "invalid choice: 'docx'",
        "text",
        "rttm",
        "beluga transcribe --help",
    )


@pytest.mark.parametrize("flags", [["--region", "eu-west-1"], ["--endpoint", "ws://127.0.0.1:8443"]])
def test_aws_options_with_another_provider(
    wav: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    fails(
        ["transcribe", str(wav), *flags],
        capsys,
        2,
        f"{flags[0]} only applies to --provider aws, not 'local'",
        "add --provider aws",
    )


def test_both_aws_options_with_another_provider(wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["transcribe", str(wav), "--region", "eu-west-1", "--endpoint", "ws://x", "--provider", "local"]
    fails(argv, capsys, 2, "--region and --endpoint only apply to --provider aws")


def test_language_options_need_identify_language(wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails(
        ["transcribe", str(wav), "--language-options", "en-US,de-DE"],
        capsys,
        2,
        "add --identify-language",
    )


def test_language_options_that_list_nothing(wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["transcribe", str(wav), "--identify-language", "--language-options", " , "]
    fails(argv, capsys, 2, "argument --language-options: ' , ' lists no language codes", "en-US,es-US")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("4000", "4000 is outside 8000-48000 Hz"),
        ("96000", "96000 is outside"),
        ("16k", "'16k' is not a whole number"),
    ],
)
def test_raw_sample_rate_out_of_range(
    wav: Path, capsys: pytest.CaptureFixture[str], value: str, fragment: str
) -> None:
    fails(
        ["transcribe", str(wav), "--raw", "--sample-rate", value],
        capsys,
        2,
        f"argument --sample-rate: {fragment}",
    )


def test_raw_channels_out_of_range(wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails(
        ["transcribe", str(wav), "--raw", "--channels", "3"],
        capsys,
        2,
        "argument --channels: 3 is outside 1-2 channel(s)",
    )


def test_raw_format_options_without_raw(wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails(
        ["transcribe", str(wav), "--sample-rate", "8000"],
        capsys,
        2,
        "--sample-rate describes headerless PCM and needs --raw",
        "carry their own format",
    )


def test_rttm_needs_speakers(wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails(
        ["transcribe", str(wav), "--format", "rttm"],
        capsys,
        2,
        "--format rttm records who spoke when; add --speakers",
    )


def test_output_into_a_missing_folder(wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "no" / "such" / "out.txt"
    fails(["transcribe", str(wav), "-o", str(target)], capsys, 2, f"folder {target.parent} does not exist")


def test_output_is_a_directory(wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails(["transcribe", str(wav), "-o", str(tmp_path)], capsys, 2, f"--output {tmp_path}: is a directory")


def test_output_over_the_input_is_refused(wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = wav.read_bytes()
    fails(["transcribe", str(wav), "--output", str(wav)], capsys, 2, "is the input file")
    assert wav.read_bytes() == before, "the recording is untouched"


def test_missing_path(capsys: pytest.CaptureFixture[str]) -> None:
    fails(["transcribe"], capsys, 2, "the following arguments are required: PATH|-")


def test_unknown_option(wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails(
        ["transcribe", str(wav), "--speaker-count", "2"],
        capsys,
        2,
        "unrecognized arguments: --speaker-count 2",
    )


def test_usage_errors_come_before_reading_audio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A bad command line is reported as such even when the file is bad too: fix the command first.
    fails(
        ["transcribe", str(tmp_path / "nope.wav"), "--provider", "nope"], capsys, 2, "unknown provider 'nope'"
    )


def test_provider_configuration_errors_are_usage_errors(
    wav: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The AWS provider refuses a region without a Transcribe Streaming endpoint when it is created.
    fails(
        ["transcribe", str(wav), "--provider", "aws", "--region", "mars-north-1"],
        capsys,
        2,
        "region 'mars-north-1'",
    )


# --- no model is touched for any of it -------------------------------------------------------------

BAD_INPUTS_SCRIPT = """
import json, sys
import numpy as np, soundfile as sf
from pathlib import Path
from beluga_voice.cli.main import main

tmp = Path(sys.argv[1])
(tmp / "empty.wav").touch()
(tmp / "corrupt.wav").write_bytes(b"RIFF\\x10\\x00\\x00\\x00WAVEfmt garbage")
sf.write(tmp / "low.wav", np.zeros(400), 4000)
sf.write(tmp / "wide.wav", np.zeros((160, 3)), 16000)
(tmp / "cut.pcm").write_bytes(b"\\x00" * 321)
sf.write(tmp / "ok.wav", np.zeros(1600), 16000)
cases = [
    ["transcribe", str(tmp / "missing.wav")],
    ["transcribe", str(tmp)],
    ["transcribe", str(tmp / "empty.wav")],
    ["transcribe", str(tmp / "corrupt.wav")],
    ["transcribe", str(tmp / "low.wav")],
    ["transcribe", str(tmp / "wide.wav")],
    ["transcribe", str(tmp / "cut.pcm"), "--raw"],
    ["transcribe", str(tmp / "ok.wav"), "--provider", "nope"],
    ["transcribe", str(tmp / "ok.wav"), "--format", "xml"],
    ["transcribe", str(tmp / "ok.wav"), "--region", "eu-west-1"],
]
codes = [main(case) for case in cases]
heavy = sorted(m for m in sys.modules if m.startswith(("faster_whisper", "ctranslate2", "onnxruntime", "beluga_voice.providers.local")))
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_bad_input_fails_before_any_model_is_loaded(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BAD_INPUTS_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stdout)
    assert report["codes"] == [1, 2, 1, 1, 1, 1, 1, 2, 2, 2]  # a folder is a batch: needs --output-dir
    assert report["heavy"] == [], "a bad input must not pay for loading the speech model"
    assert len(done.stderr.splitlines()) == 10, "one line per failure"

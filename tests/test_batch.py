"""Batch transcription: many recordings, one command; resume, isolation of bad inputs, Ctrl-C.

Real model (tiny.en), real worker processes, real files; short utterances keep it quick.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beluga_voice.batch import BatchJob, JobProgress, collect_inputs, read_failures, run_job
from beluga_voice.cli.batch import render
from beluga_voice.cli.main import main
from beluga_voice.errors import ConfigurationError

ROOT = Path(__file__).resolve().parent.parent
CARDS = ("001", "002", "003")


def wav(data_dir: Path, card: str) -> Path:
    return data_dir / "cards" / f"{card}.wav"


@pytest.fixture
def archive(data_dir: Path, tmp_path: Path) -> Path:
    """calls/a/b/001.wav, calls/a/002.wav, calls/003.flac, a note that is not audio, two bad files."""
    root = tmp_path / "calls"
    (root / "a" / "b").mkdir(parents=True)
    shutil.copy(wav(data_dir, "001"), root / "a" / "b" / "001.wav")
    shutil.copy(wav(data_dir, "002"), root / "a" / "002.wav")
    import soundfile as sf

    samples, rate = sf.read(wav(data_dir, "003"))
    sf.write(root / "003.flac", samples, rate)
    (root / "notes.txt").write_text("not audio")
    (root / "bad").mkdir()
    (root / "bad" / "empty.wav").touch()
    (root / "bad" / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    return root


def words(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


# --- inputs, without a model -------------------------------------------------------------------


def test_folders_globs_and_files_mirror_their_common_root(archive: Path) -> None:
    inputs = collect_inputs([str(archive / "a"), str(archive / "*.flac")])
    assert [str(i.relative) for i in inputs] == ["003.flac", "a/002.wav", "a/b/001.wav"]
    one = collect_inputs([str(archive / "a" / "b" / "001.wav")])
    assert [str(i.relative) for i in one] == ["001.wav"], "a lone file lands directly in the output folder"
    deep = collect_inputs([str(archive / "**" / "*.wav")])
    assert "notes.txt" not in {i.relative.name for i in deep}
    assert {str(i.relative) for i in deep} >= {"a/b/001.wav", "bad/empty.wav"}


def test_inputs_that_would_share_an_output_are_refused(archive: Path, tmp_path: Path) -> None:
    shutil.copy(archive / "003.flac", archive / "a" / "002.flac")
    job = BatchJob(collect_inputs([str(archive / "a")]), tmp_path / "out", fmt="json")
    with pytest.raises(
        ConfigurationError, match=r"002\.flac and .*002\.wav would both be written to .*out/002\.json"
    ):
        run_job(job)


def test_manifest_lines_paths_and_json_with_options(archive: Path, tmp_path: Path) -> None:
    manifest = archive / "todo.jsonl"
    manifest.write_text(
        "# calls to redo\n"
        "a/b/001.wav\n"
        '{"path": "a/002.wav", "language_code": "en-US", "speakers": true}\n'
        f"file://{archive / '003.flac'}\n"
    )
    inputs = collect_inputs([], manifest)
    by_name = {str(i.relative): i for i in inputs}
    assert set(by_name) == {"a/b/001.wav", "a/002.wav", "003.flac"}, "file:// URLs mirror like paths"
    assert by_name["003.flac"].source.startswith("file://"), "URLs are read by the workers, as given"
    assert by_name["a/002.wav"].options == {"language_code": "en-US", "speakers": True}
    manifest.write_text('a/b/001.wav\n{"path": "a/002.wav", "speed": 2}\n')
    with pytest.raises(ConfigurationError, match=r"line 2: unknown option 'speed'"):
        collect_inputs([], manifest)
    manifest.write_text("a/b/001.wav\nmissing.wav\n")
    with pytest.raises(ConfigurationError, match=r"line 2: missing\.wav: no such file"):
        collect_inputs([], manifest)


def test_progress_line_says_files_audio_speed_and_eta() -> None:
    progress = JobProgress(total=12, skipped=2, done=4, failed=1, audio_seconds=1800.0)
    progress.started -= 60.0
    line = render(progress)
    assert line.startswith("5/10 files  0.50 h audio  30.0x real time  ETA 1:00")
    assert "1 failed" in line and "(2 already done)" in line


def test_batch_usage_errors_name_the_fix(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        ([str(archive / "a")], "add --output-dir DIR"),
        (
            [str(archive / "a"), "--output-dir", str(tmp_path / "o"), "--realtime"],
            "--realtime does not apply",
        ),
        ([str(archive / "a"), "--output-dir", str(tmp_path / "o"), "--max-streams", "3"], "uses --workers"),
        ([str(archive / "nope"), "--output-dir", str(tmp_path / "o")], "no such file or folder"),
        (["--ray", str(archive / "a"), "--output-dir", str(tmp_path / "o")], "put the inputs before --ray"),
    ]
    for argv, fragment in cases:
        assert main(["transcribe", *argv]) == 2
        assert fragment in capsys.readouterr().err


# --- the real engine ----------------------------------------------------------------------------


@pytest.mark.model
def test_folder_to_outputs_failures_reported_then_resumed(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["transcribe", str(archive), "--output-dir", str(out), "--format", "json", "--workers", "2"]
    assert main(argv) == 1, "a failed input makes the exit code 1"
    err = capsys.readouterr().err
    assert "3 transcribed, 2 failed" in err
    assert {str(p.relative_to(out)) for p in out.rglob("*.json")} == {
        "a/b/001.json",
        "a/002.json",
        "003.json",
    }
    assert not [p for p in out.rglob(".*")], "no temporary file left behind"
    texts = {p.stem: words(json.loads(p.read_text())["text"]) for p in out.rglob("*.json")}
    assert texts["001"] in {"ten of clubs", "10 of clubs"}
    assert "queen" in texts["002"] and texts["003"] in {"seven of clubs", "7 of clubs"}
    failures = {Path(f["input"]).name: f for f in read_failures(out)}
    assert set(failures) == {"empty.wav", "corrupt.wav"}
    assert "is empty (0 bytes)" in failures["empty.wav"]["error"]
    assert "not a readable WAV/FLAC/OGG file" in failures["corrupt.wav"]["error"]
    assert all(f["code"] == "audio_format" for f in failures.values())
    assert err.count("beluga: failed: ") == 2 and "corrupt.wav" in err

    # The second run skips the finished outputs and only retries the failures.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.json")}
    shutil.rmtree(archive / "bad")
    started = time.monotonic()
    assert main(argv) == 0
    assert time.monotonic() - started < 5.0, "a finished job re-runs in seconds (no model is loaded)"
    assert "0 transcribed, 3 skipped (already done)" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.json")} == stamps
    assert not (out / "_failures.jsonl").exists(), "no failure left: no report"

    assert main([*argv, "--overwrite"]) == 0
    assert "3 transcribed" in capsys.readouterr().err
    assert all(p.stat().st_mtime_ns > stamps[p] for p in stamps)


@pytest.mark.model
def test_single_file_with_output_dir_and_srt_and_url_input(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "todo.txt"
    manifest.write_text(f"file://{wav(data_dir, '001')}\n")
    out = tmp_path / "out"
    assert main(["transcribe", "--manifest", str(manifest), "--output-dir", str(out), "-f", "srt"]) == 0
    srt = (out / "001.srt").read_text()
    assert srt.startswith("1\n00:00:") and "of clubs" in words(srt)
    assert main(["transcribe", str(wav(data_dir, "002")), "--output-dir", str(out), "-f", "text"]) == 0
    assert "queen" in words((out / "002.txt").read_text())
    assert capsys.readouterr().out == "", "batch outputs go to files, never stdout"


def _workers_of(pid: int) -> dict[int, str]:
    """The worker processes a ``beluga`` process started (its spawned children), by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and "spawn_main" in command:
                found[int(entry.name)] = command
    return found


@pytest.mark.model
@pytest.mark.slow  # two command lines, each loading the model in two workers: ~20 s
def test_ctrl_c_stops_workers_leaves_no_partial_output_and_the_next_run_resumes(
    data_dir: Path, tmp_path: Path
) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    for copy in range(8):
        shutil.copy(wav(data_dir, CARDS[copy % 3]), calls / f"call{copy:02d}.wav")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "beluga_voice.cli.main", "transcribe", str(calls), "--output-dir", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen([*argv, "--workers", "2"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.txt")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = _workers_of(process.pid)
    assert len(workers) == 2, workers
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "run the same command again to resume" in err
    done_first = len(list(out.glob("*.txt")))
    assert 1 <= done_first < 8
    assert not [p for p in out.rglob(".*")], "no partial output left"
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "worker processes ended"

    resumed = subprocess.run([*argv, "--workers", "2"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{8 - done_first} transcribed, {done_first} skipped" in resumed.stderr
    assert len(list(out.glob("*.txt"))) == 8


@pytest.mark.model
@pytest.mark.slow  # loads the model three times: ~20 s
def test_a_worker_killed_mid_job_fails_only_its_input(data_dir: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    for copy in range(4):
        shutil.copy(data_dir / "pyannote" / "sample.wav", calls / f"call{copy}.wav")  # 30 s each
    killed: list[int] = []

    def kill_one_worker(progress: JobProgress) -> None:
        if not killed and progress.done >= 1:  # both workers are busy with their next call
            victim = min(_workers_of(os.getpid()))
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    job = BatchJob(collect_inputs([str(calls)]), tmp_path / "out", fmt="text", workers=2)
    report = run_job(job, on_progress=kill_one_worker)
    assert killed, "a worker was killed"
    assert (report.done, report.failed) == (3, 1), "only the input in the killed worker's hands failed"
    [failure] = read_failures(tmp_path / "out")
    assert failure["code"] == "worker_died" and "worker process died" in failure["error"]
    assert len(list((tmp_path / "out").glob("*.txt"))) == report.done

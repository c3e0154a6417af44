"""Batch transcription on a real Ray cluster: a head and a second node started on this machine.

Everything stays on loopback: Ray swaps 127.0.0.1 for the machine's address, but not the rest of
127.0.0.0/8, so the head is 127.0.0.2 and the second node 127.0.0.3 (the driver reaches the head
there). Ray's token authentication is on, with a token made for the test.

The same job as a local worker pool must give the same transcripts, with one actor per node
holding the model, and the same failures report. The fixture always stops the cluster.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from beluga_voice.batch import BatchJob, collect_inputs, read_failures, run_job
from beluga_voice.cli.main import main

# Not imported here: Ray reads its authentication settings when first imported, which must happen
# after the fixture has set them (run_job imports it).
if importlib.util.find_spec("ray") is None:
    pytest.skip("Ray is an extra: pip install 'beluga-voice[ray]'", allow_module_level=True)

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).with_name("ray")
START_SECONDS = 90.0
AUTH = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")
HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"  # loopback addresses that Ray keeps as they are


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HEAD_IP, 0))
        port: int = sock.getsockname()[1]
        return port


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A ``ray start --block`` in its own process group, so stopping it ends everything it started."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "RAY_USAGE_STATS_ENABLED": "0"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(RAY), "start", *args, "--block", "--disable-usage-stats"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """End the nodes we started (by their process groups): SIGTERM, then SIGKILL after a grace."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 3  # Ray drains for up to 30 s; nothing here needs draining
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.1, deadline - time.monotonic()))
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A two-node Ray cluster with one CPU per node; yields the head's address."""
    if not RAY.exists():
        pytest.skip(f"{RAY} is missing: pip install 'beluga-voice[ray]'")
    # Token authentication with a token of this test's own, for the nodes and this driver alike:
    # whatever ~/.ray/auth_token holds (a local ray.init() writes one) cannot split the cluster.
    saved = {name: os.environ.get(name) for name in AUTH}
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)})
    logs = tmp_path_factory.mktemp("ray-logs")
    temp = Path(f"/tmp/brt{os.getpid()}")  # short: Ray's unix socket paths have a length limit
    port = _free_port()
    address = f"{HEAD_IP}:{port}"
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        nodes.append(
            _start(
                [
                    "--head",
                    f"--port={port}",
                    f"--node-ip-address={HEAD_IP}",
                    "--num-cpus=1",
                    "--include-dashboard=false",
                    f"--temp-dir={temp}",
                ],
                logs / "head.log",
            )
        )
        nodes.append(_start([f"--address={address}", f"--node-ip-address={NODE_IP}", "--num-cpus=1"], logs / "node.log"))
        _wait_for_nodes(address, 2, nodes, logs)
        yield address
    finally:
        _stop(nodes)
        shutil.rmtree(temp, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _wait_for_nodes(address: str, count: int, nodes: list[subprocess.Popen[bytes]], logs: Path) -> None:
    probe = (
        "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
        "print(sum(1 for n in ray.nodes() if n['Alive']))"
    )
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if any(node.poll() is not None for node in nodes):
            break
        done = subprocess.run(
            [sys.executable, "-c", probe, address], capture_output=True, text=True, timeout=60, check=False
        )
        if done.stdout.strip() == str(count):
            return
        time.sleep(1)
    details = "\n".join(
        (logs / name).read_text()[-2000:] for name in ("head.log", "node.log") if (logs / name).exists()
    )
    pytest.fail(f"the Ray cluster at {address} did not come up with {count} nodes:\n{details}")


def test_the_same_job_on_a_ray_cluster_gives_the_local_transcripts(
    cluster: str, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = tmp_path / "calls"
    (calls / "cards").mkdir(parents=True)
    for card in ("001", "003", "004"):
        shutil.copy(data_dir / "cards" / f"{card}.wav", calls / "cards" / f"{card}.wav")
    (calls / "broken.wav").write_bytes(b"not audio at all")
    inputs = collect_inputs([str(calls)])

    local = run_job(BatchJob(inputs, tmp_path / "local", fmt="json", workers=2))
    assert (local.done, local.failed) == (3, 1)

    out = tmp_path / "ray"
    on_ray = run_job(BatchJob(inputs, out, fmt="json", ray=True, ray_address=cluster))
    assert (on_ray.done, on_ray.failed) == (3, 1), "the broken file fails, the rest go on"
    assert len(on_ray.worker_peak_mb) == 2, "one actor per node (one CPU each), each loading the model once"
    assert all(100 < peak < 2000 for peak in on_ray.worker_peak_mb.values()), on_ray.worker_peak_mb
    for path in sorted((tmp_path / "local").rglob("*.json")):
        mirrored = out / path.relative_to(tmp_path / "local")
        assert mirrored.read_text() == path.read_text(), f"{mirrored} differs from the local run"
    assert [Path(f["input"]).name for f in read_failures(out)] == ["broken.wav"]
    assert "not a readable WAV/FLAC/OGG file" in read_failures(out)[0]["error"]

    # The command line, resuming on Ray: the fixed file is done, the finished ones are skipped.
    shutil.copy(data_dir / "cards" / "005.wav", calls / "broken.wav")
    argv = ["transcribe", str(calls), "--output-dir", str(out), "--format", "json", "--ray", cluster]
    assert main(argv) == 0
    assert "1 transcribed, 3 skipped (already done)" in capsys.readouterr().err
    assert "of spades" in (out / "broken.json").read_text()
    assert read_failures(out) == []

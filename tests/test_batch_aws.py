"""Batch jobs on a remote provider: concurrent streams to `beluga serve` (the stand-in for Amazon
Transcribe) over loopback, with the server's stream quota lower than the job's concurrency, so the
service refuses streams with LimitExceededException and the job backs off instead of failing.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from beluga_voice.batch import BatchJob, collect_inputs, read_failures, run_job
from beluga_voice.server import (
    Credential,
    CredentialStore,
    LocalEngineFactory,
    ServerConfig,
    serve_in_background,
)

pytestmark = pytest.mark.model

KEY = Credential("AKIDBATCHEXAMPLE0001", "batch/secret/for/the/local/server/0000")


async def test_streams_over_the_quota_are_retried_not_failed(data_dir: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    for card in ("001", "003", "005"):
        shutil.copy(data_dir / "cards" / f"{card}.wav", calls / f"{card}.wav")
    config = ServerConfig(
        port=0,
        credentials=CredentialStore([KEY]),
        engine=LocalEngineFactory(),
        max_streams=1,
        idle_timeout=5.0,
    )
    async with serve_in_background(config) as server:
        job = BatchJob(
            collect_inputs([str(calls)]),
            tmp_path / "out",
            fmt="text",
            provider="aws",
            options={
                "region": "us-east-1",
                "endpoint_url": server.endpoint,
                "credentials": (KEY.access_key_id, KEY.secret_access_key),
                "language_code": "en-US",
                "max_speed": 4.0,
                "drain_timeout": 30.0,
                "reconnect": False,  # each refusal reaches the job, which must back off
            },
            max_streams=3,
        )
        report = await asyncio.to_thread(run_job, job)
    assert (report.done, report.failed) == (3, 0), read_failures(tmp_path / "out")
    assert report.retries >= 2, "three streams against a quota of one: at least two were refused and retried"
    texts = {p.stem: p.read_text().lower() for p in (tmp_path / "out").glob("*.txt")}
    assert "clubs" in texts["001"] and "clubs" in texts["003"] and "spades" in texts["005"]

"""Replays add nothing: a 52 s conversation streamed with speaker labels through a proxy that resets
the TCP connection every 3-8 s. Against a fault-free run of the same audio: no word lost or
delivered twice, at most 1 % of words inserted where the fault-free run has none (a replay starts where the last final ended, so the
recogniser never decodes a fragment of a word it already answered), and the speakers mostly keep
their labels (speaker samples open every new connection)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from beluga_voice.server import LocalEngineFactory
from beluga_voice.stt.wordcheck import order_violations, stable_words
from reconnect_kit import CuttingProxy, aws, inserted_words, run_stream, serving, short_conversation

pytestmark = [pytest.mark.model, pytest.mark.slow]

SPEED = 2.0
ADDED_AT_MOST = 0.01
CHANGED_AT_MOST = 0.08
"""Share of words a fresh recogniser session may decode differently, as in the chaos tests."""
SPEAKERS_AT_LEAST = 0.9
"""The target is 0.98; measured 0.93-1.0 on a loaded machine (docs/benchmarks.md, "Replays under TCP cuts"),
so the bound is the chaos tests' until the speaker mapping across short connections improves."""


@pytest.mark.parametrize("seed", [1, 2])
async def test_cuts_every_few_seconds_add_no_words_and_keep_the_speakers(data_dir: Path, seed: int) -> None:
    engine = LocalEngineFactory()
    talk = short_conversation(data_dir)
    # A loaded machine can take a while to answer a replay: the buffer holds what is not final yet.
    options: dict[str, Any] = {"max_speed": SPEED, "show_speaker_label": True, "replay_seconds": 120.0}
    async with serving(engine) as server:
        fault_free = [(await run_stream(aws(server, **options), talk.pcm)).words for _ in range(2)]
    reference = stable_words(fault_free)
    # Every 3-8 s of wall time, as at real time: the server's decoding runs on the wall clock.
    async with serving(engine) as server, CuttingProxy(server.port, every=(3.0, 8.0), seed=seed) as proxy:
        stt = aws(server, endpoint_url=proxy.endpoint, **options)
        run = await run_stream(stt, talk.pcm)
    check = run.check(reference)
    assert proxy.cuts >= 3
    assert not check.lost and not check.duplicated, check.summary()
    assert stt.last_stream_stats is not None and stt.last_stream_stats.lost_seconds == 0
    # Words no fault-free run has (re-decoded words are the recogniser's variance).
    inserted = inserted_words(check, fault_free)
    assert len(inserted) <= ADDED_AT_MOST * len(reference), (inserted, check.summary())
    assert check.changed_ratio <= CHANGED_AT_MOST, check.summary()
    # Checked on the voices recorded on their own: the phone call's two voices the diarizer separates
    # unreliably even without faults (see the chaos tests).
    assert check.speaker_agreement(within=talk.clean_voices) >= SPEAKERS_AT_LEAST, check.summary()
    assert not order_violations(run.results)

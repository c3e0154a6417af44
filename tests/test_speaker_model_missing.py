"""Without the speaker model, speaker labels are refused up front with the fix, never mid-stream.

The server test runs `beluga serve`'s real handshake over a socket on 127.0.0.1; the weights are
"missing" by pointing the engine at a file that does not exist (the real install has them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from beluga_voice.cli.main import main
from beluga_voice.providers.aws_transcribe.messages import end_of_stream
from beluga_voice.server import LocalEngineFactory, ServerConfig, serve_in_background
from beluga_voice.server.testing import open_stream, read_reply

pytestmark = pytest.mark.model
BASE = "language-code=en-US&media-encoding=pcm&sample-rate=16000"


async def test_serve_refuses_speaker_labels_at_the_handshake_and_still_serves_without(tmp_path: Path) -> None:
    factory = LocalEngineFactory(speaker_model_path=tmp_path / "absent.pt", num_workers=1)
    try:
        config = ServerConfig(port=0, auth=False, engine=factory, idle_timeout=5.0)
        async with serve_in_background(config) as server:
            async with open_stream(f"{server.url}?{BASE}&show-speaker-label=true") as ws:
                reply = await read_reply(ws)
            assert reply.exception is not None and reply.exception.name == "BadRequestException"
            message = reply.exception.message
            assert "show-speaker-label" in message and "requirements/models.txt" in message
            assert "absent.pt" in message and not reply.results, "refused before any result"

            async with open_stream(f"{server.url}?{BASE}") as ws:  # the same server, no labels: fine
                await ws.send(end_of_stream())
                plain = await read_reply(ws)
            assert plain.exception is None
    finally:
        factory.engine.close()


def test_transcribe_says_so_before_reading_any_audio(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file does not even exist: the speaker model is checked first, with the install command."""
    from beluga_voice.providers.local.diarization import availability

    monkeypatch.setattr(availability, "default_weights_path", lambda: tmp_path / "pretrained.pt")
    assert main(["transcribe", str(tmp_path / "never-read.wav"), "--speakers"]) == 1
    err = capsys.readouterr().err
    assert "speaker model weights are missing" in err and "requirements/models.txt" in err
    assert "never-read.wav" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--min-speakers", "2"], "--min-speakers bound the speakers labelled by --speakers; add --speakers"),
        (["--speakers", "2", "--provider", "aws"], "only the local engine takes a speaker count"),
        (["--speakers", "0"], "0 is outside 1-32 speakers"),
    ],
)
def test_speaker_count_options_are_checked(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["transcribe", str(tmp_path / "x.wav"), *argv]) == 2
    assert message in capsys.readouterr().err

"""An echo agent: every user turn is said back, word by word, and the user can talk over it.

    python examples/echo_agent.py                 # the two-speaker sample call, played live
    python examples/echo_agent.py question.wav --speed 2

The agent is an async generator: the session calls it with the finished turn and the history,
and streams what it yields. Here it "speaks" at about three words a second, so the next turn of
the recording often starts while it is still talking: that is a barge-in, and the session cancels
the reply. Plug in a TTS hook and an audio sink (``create_voice_session(..., tts=..., audio_sink=...)``)
to hear it instead of reading it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from beluga_voice import BelugaError, create_provider
from beluga_voice.audio import chunk_bytes, iter_chunks, paced, read_audio
from beluga_voice.session import (
    AgentReplyCompleted,
    AgentReplyStarted,
    Interruption,
    SessionConfig,
    SessionError,
    Turn,
    UserTurnCompleted,
    create_voice_session,
)

SAMPLE = Path(__file__).resolve().parent.parent / ".cache" / "data" / "pyannote" / "sample.wav"
WORDS_PER_SECOND = 3.0


async def echo(turn: Turn, history: Sequence[Turn]) -> AsyncIterator[str]:
    """Repeat the turn, paced like speech."""
    yield "You said:"
    for word in turn.text.split():
        await asyncio.sleep(1 / WORDS_PER_SECOND)
        yield " " + word


async def converse(path: Path, provider: str, speed: float) -> None:
    stt = create_provider(provider, show_speaker_label=True)  # a new voice ends the turn at once
    session = create_voice_session(stt, SessionConfig(inactivity_timeout=None), agent=echo)

    reply_latency: dict[int, float | None] = {}
    cut_by: dict[int, str] = {}

    def show_reply(event: AgentReplyCompleted) -> None:
        turn = event.reply_to.index
        note = f"  [cut off by: {cut_by[turn]!r}]" if event.reply.interrupted else ""
        latency = reply_latency.get(turn)
        started = f"{latency:.2f} s" if latency is not None else "?"
        print(f"agent   < (to turn {turn}, started after {started}) {event.reply.text}{note}", flush=True)

    session.on(
        UserTurnCompleted, lambda e: print(f"user {e.turn.speaker} > [turn {e.turn.index}] {e.turn.text}")
    )
    session.on(AgentReplyStarted, lambda e: reply_latency.__setitem__(e.turn.index, e.latency))
    session.on(Interruption, lambda e: cut_by.__setitem__(e.reply_to.index, e.user_text))
    session.on(AgentReplyCompleted, show_reply)
    session.on(SessionError, lambda e: print(f"\n  error in {e.source}: {e.error}", file=sys.stderr))

    audio = read_audio(path).convert(stt.sample_rate, stt.channels)
    chunks = iter_chunks(audio.to_pcm16(), chunk_bytes(stt.sample_rate, channels=stt.channels))
    await session.start()
    session.attach(paced(chunks, stt.sample_rate, stt.channels, speed=speed) if speed > 0 else chunks)
    try:
        await session.wait_closed()
    finally:
        await session.stop()
        await stt.aclose()
    print("\nLatency per turn (end of speech -> final / turn complete / agent reply):")
    for m in session.metrics:
        figures = [m.final_latency, m.turn_latency, m.reply_latency]
        print(f"  turn {m.turn_index}: " + " / ".join("-" if f is None else f"{f:.2f} s" for f in figures))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "audio", nargs="?", type=Path, default=SAMPLE, help="WAV/FLAC/OGG file (default: %(default)s)"
    )
    parser.add_argument("--provider", default="local", help="STT provider name (default: local)")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed, 0 = unpaced (default: 1)")
    args = parser.parse_args()
    try:
        asyncio.run(converse(args.audio, args.provider, args.speed))
    except BelugaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Meeting transcriber: a recording through a voice session, printed as speaker-labelled turns.

    python examples/meeting_transcriber.py                      # the two-speaker sample call
    python examples/meeting_transcriber.py meeting.wav --speed 0 # as fast as the engine goes
    python examples/meeting_transcriber.py call.wav --provider aws

The file is played into the session as if it were live (``--speed`` 1 = real time); each turn is
printed when the session decides it is over: when a different voice speaks, or after a pause.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import defaultdict
from pathlib import Path

from beluga_voice import BelugaError, create_provider
from beluga_voice.audio import chunk_bytes, iter_chunks, paced, read_audio
from beluga_voice.session import PartialTranscript, SessionConfig, UserTurnCompleted, create_voice_session

SAMPLE = Path(__file__).resolve().parent.parent / ".cache" / "data" / "pyannote" / "sample.wav"


def clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


async def transcribe(path: Path, provider: str, speed: float) -> None:
    stt = create_provider(provider, show_speaker_label=True)
    session = create_voice_session(stt, SessionConfig(inactivity_timeout=None))
    live = sys.stderr.isatty()
    talk_time: dict[str, float] = defaultdict(float)

    def show_partial(event: PartialTranscript) -> None:
        if live:  # one overwritten status line; a log file only gets the turns
            print(f"\r\033[K  … {event.text[-100:]}", end="", file=sys.stderr, flush=True)

    def show_turn(event: UserTurnCompleted) -> None:
        turn = event.turn
        who = f"Speaker {turn.speaker}" if turn.speaker is not None else "Speaker ?"
        talk_time[who] += turn.end - turn.start
        if live:
            print("\r\033[K", end="", file=sys.stderr)
        print(f"[{clock(turn.start)} - {clock(turn.end)}] {who}: {turn.text}", flush=True)

    session.on(PartialTranscript, show_partial)
    session.on(UserTurnCompleted, show_turn)

    audio = read_audio(path).convert(stt.sample_rate, stt.channels)
    chunks = iter_chunks(audio.to_pcm16(), chunk_bytes(stt.sample_rate, channels=stt.channels))
    await session.start()
    session.attach(paced(chunks, stt.sample_rate, stt.channels, speed=speed) if speed > 0 else chunks)
    try:
        await session.wait_closed()
    finally:
        await session.stop()
        await stt.aclose()
    print(f"\n{len(session.history)} turns over {clock(audio.duration)}:")
    for who, seconds in sorted(talk_time.items()):
        print(f"  {who}: {seconds:.1f} s of speech")


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
        asyncio.run(transcribe(args.audio, args.provider, args.speed))
    except BelugaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Live microphone session: partial and final transcripts and turns as you speak. Ctrl-C to stop.

    pip install 'beluga-voice[mic]'          # sounddevice (PortAudio) for the microphone
    python examples/live_microphone.py        # the local engine, offline
    python examples/live_microphone.py --provider aws --speakers

Partials overwrite one line while you talk; finals and completed turns are printed for good.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from beluga_voice import BelugaError, create_provider
from beluga_voice.audio.mic import Microphone
from beluga_voice.session import (
    FinalTranscript,
    PartialTranscript,
    SessionConfig,
    SessionEnded,
    StateChanged,
    UserTurnCompleted,
    create_voice_session,
)


async def listen(provider: str, speakers: bool, device: str | None) -> None:
    stt = create_provider(provider, show_speaker_label=speakers)
    session = create_voice_session(stt, SessionConfig())

    def partial(event: PartialTranscript) -> None:
        print(f"\r\033[K  … {event.text[-100:]}", end="", flush=True)

    def final(event: FinalTranscript) -> None:
        late = f" ({event.latency:.2f} s after you stopped)" if event.latency is not None else ""
        print(f"\r\033[K  final{late}: {event.text}", flush=True)

    def turn(event: UserTurnCompleted) -> None:
        who = f"speaker {event.turn.speaker}" if event.turn.speaker is not None else "you"
        print(
            f"turn {event.turn.index} ({who}, {event.turn.end - event.turn.start:.1f} s): {event.turn.text}"
        )

    session.on(PartialTranscript, partial)
    session.on(FinalTranscript, final)
    session.on(UserTurnCompleted, turn)
    session.on(StateChanged, lambda e: print(f"\r\033[K[{e.new}]", end="", flush=True))
    session.on(SessionEnded, lambda e: print(f"\r\033[Ksession ended ({e.reason}), {len(e.history)} turns"))

    # Open the microphone first: where there is none, this fails with what to install or connect.
    device_id: int | str | None = int(device) if device and device.isdigit() else device
    async with Microphone(stt.sample_rate, stt.channels, device=device_id) as mic:
        print("Listening… speak, then pause. Ctrl-C to stop.", file=sys.stderr)
        await session.start()
        session.attach(mic)
        try:
            await session.wait_closed()
        finally:
            await session.stop()
            await stt.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--provider", default="local", help="STT provider name (default: local)")
    parser.add_argument("--speakers", action="store_true", help="label speakers (diarization)")
    parser.add_argument("--device", help="input device index or name (see `python -m sounddevice`)")
    args = parser.parse_args()
    try:
        asyncio.run(listen(args.provider, args.speakers, args.device))
    except BelugaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopped.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``beluga transcribe``: a recording (or stdin) to text, JSON, JSON lines, SRT, WebVTT or RTTM.

Every check that needs no audio and no model runs first, then the audio is read and validated, and
only then is the provider created: a bad command line or a bad file fails in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from beluga_voice.audio.chunker import DEFAULT_CHUNK_MS, chunk_bytes, iter_chunks
from beluga_voice.audio.pacer import paced
from beluga_voice.audio.pcm import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from beluga_voice.audio.reader import RawFormat, read_audio
from beluga_voice.cli import EXIT_OK, UsageError, whole_number
from beluga_voice.cli import batch as batch_cli
from beluga_voice.cli.live import transcribe_stdin
from beluga_voice.cli.output import Output, print_usage, status_display, streams, write_results
from beluga_voice.stt.model import Transcript, TranscriptResult
from beluga_voice.stt.registry import DEFAULT_PROVIDER, available_providers, create_provider
from beluga_voice.stt.serializers import FORMATS, serialize
from beluga_voice.usage import DEFAULT_CURRENCY, DEFAULT_RATE_PER_MINUTE, SessionUsage

AWS = "aws"
DEFAULT_RAW = RawFormat()

EXAMPLES = f"""\
examples:
  beluga transcribe meeting.wav --speakers
  beluga transcribe call.flac --speakers --format srt --output call.srt
  beluga transcribe talk.wav --provider aws --region eu-west-1 --format json
  beluga transcribe - --raw --sample-rate 8000 < call.raw
  arecord -f S16_LE -r 16000 -c 1 | beluga transcribe -     (stdin is transcribed as it arrives)
  beluga transcribe interview.ogg --identify-language --language-options en-US,es-US
  beluga transcribe call.wav --identify-multiple-languages --language-options en-US,fr-CA,it-IT
  beluga transcribe demo.wav --realtime --format jsonl
  beluga transcribe call.wav --provider aws --usage --rate-per-minute 0.024

formats:
  text   one line per segment, "speaker: text" when speakers are known
  json   the documented transcript document (docs/python-api.md)
  jsonl  one result event per line (partials and finals), written as they arrive
  srt    SubRip subtitles      vtt  WebVTT subtitles (speakers as <v> voices)
  rttm   who spoke when, for diarization scoring (needs --speakers)

Headerless PCM must be s16le; without --sample-rate/--channels it is read as {DEFAULT_RAW.sample_rate} Hz mono.
Exit codes: 0 success, 1 runtime error (bad audio, service failure), 2 usage error,
130 Ctrl-C (on stdin, after printing the finals of the audio read so far)."""


SPEAKERS_LIMIT = 32  # as LocalSTT accepts; not imported, to keep the model stack out of `beluga --help`


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "transcribe",
        help="transcribe a recording or stdin",
        description="Transcribe an audio file (WAV, FLAC, OGG) or stdin ('-') with an STT provider.",
        epilog=EXAMPLES,
    )
    parser.add_argument(
        "input",
        metavar="PATH|-",
        nargs="*",
        help="audio file to transcribe, or - to read stdin; several files, folders or globs with --output-dir",
    )
    add_provider_arguments(parser)
    add_output_arguments(parser)
    add_audio_arguments(parser)
    batch_cli.add_arguments(parser)
    parser.set_defaults(func=run)


def add_provider_arguments(parser: argparse.ArgumentParser) -> None:
    """The provider options, shared with ``beluga listen``."""
    engine = parser.add_argument_group("provider")
    engine.add_argument(
        "--provider",
        default=DEFAULT_PROVIDER,
        metavar="NAME",
        help=f"STT provider: {', '.join(available_providers())} (default: {DEFAULT_PROVIDER}, offline)",
    )
    engine.add_argument(
        "--speakers",
        nargs="?",
        const=True,
        default=False,
        type=whole_number(1, SPEAKERS_LIMIT, "speakers"),
        metavar="N",
        help="label speakers (diarization): spk_0, spk_1, ...; N: exactly N people speak (local only)",
    )
    engine.add_argument(
        "--min-speakers",
        type=whole_number(1, SPEAKERS_LIMIT, "speakers"),
        metavar="N",
        help="at least N people speak (with --speakers, local only)",
    )
    engine.add_argument(
        "--max-speakers",
        type=whole_number(1, SPEAKERS_LIMIT, "speakers"),
        metavar="N",
        help="at most N people speak (with --speakers, local only)",
    )
    engine.add_argument("--language-code", metavar="CODE", help="language of the audio, e.g. en-US")
    engine.add_argument(
        "--identify-language", action="store_true", help="detect the language instead of naming it"
    )
    engine.add_argument(
        "--language-options",
        metavar="A,B",
        type=_language_list,
        help="candidate languages (2 or more) for --identify-language or --identify-multiple-languages, "
        "comma-separated, e.g. en-US,es-US",
    )
    engine.add_argument(
        "--preferred-language",
        metavar="CODE",
        help="with --identify-language: the option to expect (decided sooner when it is spoken)",
    )
    engine.add_argument(
        "--identify-multiple-languages",
        action="store_true",
        help="identify the language of each utterance, for audio that switches language",
    )
    engine.add_argument(
        "--model",
        metavar="DIR",
        help="local provider: CTranslate2 Whisper model folder (default: tiny.en for English, the "
        "multilingual Whisper base for other languages and language identification)",
    )
    engine.add_argument("--region", help="AWS region (aws provider only), e.g. us-east-1")
    engine.add_argument(
        "--endpoint",
        metavar="URL",
        help="service endpoint (aws provider only), e.g. ws://127.0.0.1:8443 for `beluga serve`",
    )


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """The output options, shared with ``beluga listen``."""
    output = parser.add_argument_group("output")
    output.add_argument(
        "-f", "--format", choices=FORMATS, default="text", help="output format (default: text)"
    )
    output.add_argument(
        "-o", "--output", metavar="FILE", help="write the transcript to FILE instead of stdout"
    )
    output.add_argument(
        "--usage",
        action="store_true",
        help="after the transcript, print the audio seconds and an estimated cost to stderr",
    )
    output.add_argument(
        "--rate-per-minute",
        type=_rate,
        metavar="R",
        help=f"price per minute of audio for --usage (default {DEFAULT_RATE_PER_MINUTE:g} "
        f"{DEFAULT_CURRENCY}, an assumption: see docs/operations.md)",
    )


def add_audio_arguments(parser: argparse.ArgumentParser) -> None:
    audio = parser.add_argument_group("audio input")
    audio.add_argument(
        "--realtime",
        action="store_true",
        help="feed the audio at real-time speed, as if live; text and jsonl appear as results "
        "arrive, partials show on stderr when it is a terminal",
    )
    audio.add_argument("--raw", action="store_true", help="input is headerless s16le PCM")
    audio.add_argument(
        "--sample-rate",
        type=whole_number(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE, "Hz"),
        metavar="HZ",
        help=f"sample rate of --raw input (default: {DEFAULT_RAW.sample_rate})",
    )
    audio.add_argument(
        "--channels",
        type=whole_number(1, MAX_CHANNELS, "channel(s)"),
        metavar="N",
        help=f"channels of --raw input, interleaved (default: {DEFAULT_RAW.channels})",
    )


def run(args: argparse.Namespace) -> int:
    if batch_cli.wants_batch(args):
        return batch_cli.run(args)
    args.input = batch_cli.single_input(args)
    check_arguments(args)
    return asyncio.run(transcribe(args))


def check_arguments(args: argparse.Namespace) -> None:
    """Usage errors that need neither audio nor a model."""
    check_common_arguments(args)
    raw_only = [
        flag
        for flag, value in (("--sample-rate", args.sample_rate), ("--channels", args.channels))
        if value is not None
    ]
    if raw_only and not args.raw:
        raise UsageError(
            f"{' and '.join(raw_only)} {'describe' if len(raw_only) > 1 else 'describes'} headerless PCM "
            f"and {'need' if len(raw_only) > 1 else 'needs'} --raw; "
            "WAV, FLAC and OGG files carry their own format"
        )
    if args.output and args.output != "-":
        _check_output(Path(args.output), args.input)


def check_common_arguments(args: argparse.Namespace) -> None:
    """The checks of the provider and output options (shared with ``beluga listen``)."""
    providers = available_providers()
    if args.provider not in providers:
        raise UsageError(f"unknown provider {args.provider!r}; choose one of: {', '.join(providers)}")
    aws_only = [flag for flag, value in (("--region", args.region), ("--endpoint", args.endpoint)) if value]
    if aws_only and args.provider != AWS:
        raise UsageError(
            f"{' and '.join(aws_only)} only {'apply' if len(aws_only) > 1 else 'applies'} to --provider aws, "
            f"not {args.provider!r}; "
            f"add --provider aws or drop {' and '.join(aws_only)}"
        )
    identifying = args.identify_language or args.identify_multiple_languages
    if args.language_options and not identifying:
        raise UsageError(
            "--language-options lists the candidates of language identification; add --identify-language "
            "(or --identify-multiple-languages for audio that switches language)"
        )
    _check_speaker_hints(args)
    if identifying and len(args.language_options or ()) < 2:
        raise UsageError(
            "language identification chooses among --language-options: list at least two, e.g. "
            "--language-options en-US,es-US"
        )
    chosen = [
        flag
        for flag, on in (
            ("--language-code", bool(args.language_code)),
            ("--identify-language", args.identify_language),
            ("--identify-multiple-languages", args.identify_multiple_languages),
        )
        if on
    ]
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} are alternatives; keep one")
    if args.preferred_language:
        if not args.identify_language:
            raise UsageError("--preferred-language is one of the options of --identify-language; add it")
        if args.preferred_language not in args.language_options:
            raise UsageError(
                f"--preferred-language {args.preferred_language} is not among --language-options "
                f"{','.join(args.language_options)}; add it to them"
            )
    if args.model and args.provider != DEFAULT_PROVIDER:
        raise UsageError(f"--model chooses the local provider's model, not {args.provider!r}'s; drop it")
    if args.format == "rttm" and not args.speakers:
        raise UsageError("--format rttm records who spoke when; add --speakers")
    if args.rate_per_minute is not None and not args.usage:
        raise UsageError("--rate-per-minute prices the --usage estimate; add --usage")


def provider_options(args: argparse.Namespace) -> dict[str, Any]:
    """The provider's keyword arguments: only what the user set, so providers keep their defaults."""
    options: dict[str, Any] = {}
    if args.language_code:
        options["language_code"] = args.language_code
    if args.speakers:
        options["show_speaker_label"] = True
    if args.speakers is not True and args.speakers:
        options["num_speakers"] = args.speakers
    for hint in ("min_speakers", "max_speakers"):
        if getattr(args, hint) is not None:
            options[hint] = getattr(args, hint)
    if args.identify_language:
        options["identify_language"] = True
    if args.identify_multiple_languages:
        options["identify_multiple_languages"] = True
    if args.language_options:
        options["language_options"] = args.language_options
    if args.preferred_language:
        options["preferred_language"] = args.preferred_language
    if args.model:
        options["model_path"] = args.model
    if args.region:
        options["region"] = args.region
    if args.endpoint:
        options["endpoint_url"] = args.endpoint
    return options


async def transcribe(args: argparse.Namespace) -> int:
    if args.input == "-":
        return await transcribe_stdin(args, provider_options(args))  # streamed as it arrives
    name = args.input
    raw = RawFormat(args.sample_rate or DEFAULT_RAW.sample_rate, args.channels or DEFAULT_RAW.channels)
    audio = read_audio(Path(args.input), raw=raw if args.raw else None)
    streamed = streams(args.format, live=args.realtime)
    session = SessionUsage()  # the provider's streams report what they sent here, for --usage
    with Output(args.output) as out, session.collecting():
        async with create_provider(args.provider, **provider_options(args)) as provider:
            pcm, duration = provider.prepare(audio)
            chunks: Iterable[bytes] | AsyncIterator[bytes] = iter_chunks(
                pcm, chunk_bytes(provider.sample_rate, DEFAULT_CHUNK_MS, provider.channels)
            )
            if args.realtime:
                chunks = paced(chunks, provider.sample_rate, provider.channels)
            display = status_display(name, duration, live=args.realtime)
            file_mode = getattr(provider, "transcribe_file", None)  # the local engine's deterministic path
            if not streamed and not args.realtime and file_mode is not None:
                try:
                    transcript = await file_mode(audio, on_progress=lambda s: display(_progress(s)))
                finally:
                    display(None)
            else:
                transcript = Transcript(provider=args.provider, duration=duration)
                await write_results(
                    provider.stream(chunks), transcript, out, display, fmt=args.format, live=args.realtime
                )
        transcript.language_code = transcript.dominant_language()
        if not streamed:
            out.write(serialize(transcript, args.format, file_id=Path(args.input).stem))
        out.finish()
    if not transcript.text:
        print(f"beluga: note: no speech found in {name}", file=sys.stderr)
    if args.usage:
        print_usage(session, args.provider, duration, args.rate_per_minute)
    return EXIT_OK


def _check_output(output: Path, input_name: str) -> None:
    if output.is_dir():
        raise UsageError(
            f"--output {output}: is a directory; give a file name such as {output / 'transcript.txt'}"
        )
    if not output.parent.is_dir():
        raise UsageError(f"--output {output}: folder {output.parent} does not exist; create it first")
    if input_name != "-" and output.resolve() == Path(input_name).resolve():
        raise UsageError(f"--output {output}: is the input file; writing there would destroy the recording")


def _progress(seconds: float) -> TranscriptResult:
    """A stand-in result that tells the progress bar how far file mode has got."""
    return TranscriptResult(result_id="progress", is_partial=True, start=seconds, end=seconds, text="")


def _check_speaker_hints(args: argparse.Namespace) -> None:
    """Speaker-count hints need --speakers and the local engine (Amazon Transcribe's streaming API
    takes no speaker count); the local speaker model must be installed, said before reading audio."""
    hints = [
        flag
        for flag, value in (("--min-speakers", args.min_speakers), ("--max-speakers", args.max_speakers))
        if value
    ]
    if hints and not args.speakers:
        raise UsageError(f"{' and '.join(hints)} bound the speakers labelled by --speakers; add --speakers")
    if args.speakers is not True and args.speakers:
        hints.insert(0, f"--speakers {args.speakers}")
    if hints and args.provider != DEFAULT_PROVIDER:
        raise UsageError(
            f"{' and '.join(hints)}: only the local engine takes a speaker count (Amazon Transcribe "
            "streaming has no such setting); use plain --speakers with --provider aws"
        )
    if args.speakers and args.provider == DEFAULT_PROVIDER:
        from beluga_voice.providers.local.diarization.availability import require_speaker_model

        require_speaker_model()  # ModelNotFoundError with the install command



def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number (a price per minute, e.g. 0.024)"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a price: give a number >= 0, e.g. 0.024")
    return value


def _language_list(text: str) -> list[str]:
    codes = [code.strip() for code in text.split(",") if code.strip()]
    if not codes:
        raise argparse.ArgumentTypeError(f"{text!r} lists no language codes; use e.g. en-US,es-US")
    return codes

"""``beluga serve``: run the local Transcribe-compatible streaming server."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
from pathlib import Path
from typing import Any

from beluga_voice.cli import EXIT_OK, UsageError, whole_number
from beluga_voice.server import (
    ENGINES,
    CredentialStore,
    EngineFactory,
    FaultPlan,
    LocalEngineFactory,
    ServerConfig,
    run_server,
)
from beluga_voice.server.auth import Credential
from beluga_voice.server.observability import DEFAULT_PORT as DEFAULT_METRICS_PORT
from beluga_voice.server.settings import DEFAULT_HOST, DEFAULT_PORT
from beluga_voice.server.vocabulary import parse_filter_option
from beluga_voice.telemetry import configure_logging

EXAMPLES = """examples:
  beluga serve                                   # ws://127.0.0.1:8443, signatures checked against AWS_* env
  beluga serve --no-auth --engine echo           # open, protocol path only (no model)
  beluga serve --credentials-file ~/.aws/credentials --certfile cert.pem --keyfile key.pem
  beluga serve --no-auth --fault-drop-after 20 --fault-streams 1   # first stream loses its TCP link at 20 s
  beluga serve --no-auth --partials off          # answer only at the end of each utterance, like a quiet service
  beluga serve --metrics-port 9464 --log-json    # /healthz and /metrics on :9464, one JSON object per log line
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run a local Amazon Transcribe Streaming-compatible server",
        description="Serve the Amazon Transcribe Streaming WebSocket protocol on "
        "/stream-transcription-websocket, backed by the local engine. Docs: docs/server.md",
        epilog=EXAMPLES,
    )
    listen = parser.add_argument_group("listening")
    listen.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    listen.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any)"
    )
    listen.add_argument("--certfile", type=Path, help="TLS certificate (PEM): serve wss:// instead of ws://")
    listen.add_argument("--keyfile", type=Path, help="TLS private key (PEM) for --certfile")

    auth = parser.add_argument_group("authentication (SigV4 presigned URLs, as the service)")
    auth.add_argument("--no-auth", action="store_true", help="accept unsigned streams (open local use)")
    auth.add_argument(
        "--credentials-file",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="key pairs to accept, in ~/.aws/credentials format (every profile; repeatable)",
    )
    auth.add_argument("--access-key-id", help="an access key id to accept (with --secret-access-key)")
    auth.add_argument(
        "--secret-access-key", help="its secret (visible to other local users in `ps`: prefer a file)"
    )
    auth.add_argument("--session-token", help="the session token of temporary credentials")
    auth.add_argument("--region", help="accept only URLs signed for this region (default: any)")
    auth.add_argument(
        "--reject-with",
        choices=("frame", "http"),
        default="frame",
        help="answer refused streams with an exception frame after the upgrade (default) or an HTTP status",
    )

    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--idle-timeout", type=float, default=15.0, metavar="S", help="seconds without audio (15)"
    )
    limits.add_argument(
        "--max-stream-seconds", type=float, default=4 * 3600.0, metavar="S", help="longest stream (14400)"
    )
    limits.add_argument("--max-streams", type=int, default=25, metavar="N", help="concurrent streams (25)")
    limits.add_argument(
        "--max-ahead", type=float, default=60.0, metavar="S", help="audio ahead of real time allowed (60)"
    )
    limits.add_argument("--drain-timeout", type=float, default=30.0, metavar="S", help="SIGTERM grace (30)")

    engine = parser.add_argument_group("engine")
    engine.add_argument(
        "--engine", choices=sorted(ENGINES), default="local", help="recogniser (default local)"
    )
    engine.add_argument(
        "--model", type=Path, metavar="DIR", help="CTranslate2 Whisper model folder for every stream (default: tiny.en for English, "
        "the multilingual Whisper base when a stream identifies or names another language)"
    )
    engine.add_argument(
        "--workers", type=whole_number(), metavar="N", help="utterances decoded in parallel (local engine)"
    )
    engine.add_argument(
        "--cpu-threads", type=whole_number(), metavar="N", help="threads per decoding worker (local engine)"
    )

    engine.add_argument(
        "--partials",
        choices=("on", "off"),
        default="on",
        help="send partial results (default on); off answers only at the end of each utterance, "
        "as a quiet service may",
    )
    engine.add_argument(
        "--vocabulary-filter",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="a vocabulary filter streams can name (one word per line; repeatable)",
    )

    operations = parser.add_argument_group("operations (docs/operations.md)")
    operations.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help=f"serve /healthz and Prometheus /metrics on this port (off unless given; {DEFAULT_METRICS_PORT} "
        "is usual; 0 = any)",
    )
    operations.add_argument(
        "--metrics-host",
        default=DEFAULT_HOST,
        metavar="HOST",
        help=f"address for --metrics-port (default {DEFAULT_HOST}; keep it private)",
    )
    operations.add_argument(
        "--log-json", action="store_true", help="log one JSON object per line on stderr (secrets masked)"
    )

    faults = parser.add_argument_group("fault injection (off unless asked)")
    faults.add_argument("--fault-drop-after", type=float, metavar="S", help="drop TCP without a close frame")
    faults.add_argument(
        "--fault-stall-after",
        type=float,
        metavar="S",
        help="stop answering after S s: nothing read, no pongs, no results (a black-holed connection)",
    )
    faults.add_argument(
        "--fault-exception", metavar="NAME", help="exception to send (with --fault-exception-after)"
    )
    faults.add_argument(
        "--fault-exception-message", metavar="TEXT", help="its message (default: the service's)"
    )
    faults.add_argument(
        "--fault-exception-after", type=float, metavar="S", help="send the exception after S s"
    )
    faults.add_argument(
        "--fault-delay-results", type=float, default=0.0, metavar="S", help="delay every result"
    )
    faults.add_argument(
        "--fault-refuse-status", type=int, metavar="CODE", help="refuse upgrades with this status"
    )
    faults.add_argument("--fault-streams", type=int, metavar="N", help="only the first N streams meet faults")
    faults.add_argument(
        "--fault-seed", type=int, metavar="SEED", help="one random fault per stream, reproducible"
    )
    faults.add_argument(
        "--fault-rate", type=float, default=0.5, metavar="P", help="chance of a random fault (0.5)"
    )
    parser.set_defaults(func=run)


def _credentials(args: argparse.Namespace) -> CredentialStore:
    store = CredentialStore.from_env()
    for path in args.credentials_file:
        store = store.merged(CredentialStore.from_file(path))
    if args.access_key_id or args.secret_access_key:
        if not (args.access_key_id and args.secret_access_key):
            raise UsageError("--access-key-id and --secret-access-key go together")
        store = store.merged(
            CredentialStore([Credential(args.access_key_id, args.secret_access_key, args.session_token)])
        )
    return store


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    if args.fault_exception and args.fault_exception_after is None:
        raise UsageError("--fault-exception needs --fault-exception-after S")
    plan = FaultPlan(
        drop_after=args.fault_drop_after,
        stall_after=args.fault_stall_after,
        exception_after=args.fault_exception_after,
        exception_name=args.fault_exception or "InternalFailureException",
        exception_message=args.fault_exception_message,
        result_delay=args.fault_delay_results,
        refuse_status=args.fault_refuse_status,
        streams=args.fault_streams,
        seed=args.fault_seed,
        random_rate=args.fault_rate,
    )
    return ServerConfig(
        host=args.host,
        port=args.port,
        certfile=args.certfile,
        keyfile=args.keyfile,
        auth=not args.no_auth,
        credentials=CredentialStore() if args.no_auth else _credentials(args),
        region=args.region,
        rejection=args.reject_with,
        idle_timeout=args.idle_timeout,
        max_stream_seconds=args.max_stream_seconds,
        max_streams=args.max_streams,
        max_ahead_seconds=args.max_ahead if args.max_ahead > 0 else None,
        drain_timeout=args.drain_timeout,
        faults=plan,
        vocabulary_filters=dict(parse_filter_option(option) for option in args.vocabulary_filter),
        engine=_engine(args),
        partials=args.partials == "on",
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
    )


def _engine(args: argparse.Namespace) -> EngineFactory:
    local_options = {"--model": args.model, "--workers": args.workers, "--cpu-threads": args.cpu_threads}
    if args.engine != "local":
        given = [flag for flag, value in local_options.items() if value is not None]
        if given:
            verb = "configure" if len(given) > 1 else "configures"
            raise UsageError(f"{' and '.join(given)} {verb} the local engine, not --engine {args.engine}")
        return ENGINES[args.engine]()
    # Only what was given, so the engine keeps its own defaults.
    options = {
        name: value
        for name, value in (
            ("model_path", args.model),
            ("num_workers", args.workers),
            ("cpu_threads", args.cpu_threads),
        )
        if value is not None
    }
    # The multilingual model (identify-language, other languages) loads at start when installed.
    from beluga_voice.providers.local.model_files import multilingual_installed

    multilingual = args.model is None and multilingual_installed()
    return LocalEngineFactory(preload_multilingual=multilingual, **options)



def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.log_json:
        # Replaces the handler `beluga` installed (same name), so no line comes out twice.
        configure_logging(json=True, level=logging.getLogger().level)
    log = logging.getLogger("beluga_voice.server")
    log.setLevel(logging.INFO)
    if not config.auth and not _is_loopback(config.host):
        log.warning("--no-auth on %s: anyone who can reach this address can use the server", config.host)
    if config.faults.enabled:
        log.warning("fault injection is ON: %s", config.faults)
    asyncio.run(run_server(config))
    return EXIT_OK

"""``beluga doctor``: check credentials, region, endpoint, TLS, clock, local model and microphone."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from beluga_voice.cli import UsageError
from beluga_voice.doctor import (
    DEFAULT_TIMEOUT,
    DoctorOptions,
    describe_target,
    diagnose,
    exit_code,
    format_report,
    report_json,
)

EXAMPLES = """examples:
  beluga doctor                                     # the default region's AWS endpoint
  beluga doctor --region eu-west-1 --profile work
  beluga doctor --endpoint ws://127.0.0.1:8443      # a local `beluga serve`
  beluga doctor --endpoint wss://localhost:8443 --ca-file cert.pem
exit code: 1 if any check FAILs (warnings do not), else 0.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check that streaming will work here, and say how to fix what will not",
        description="Check AWS credentials (which source, never the keys), the region's streaming "
        "support, the endpoint's reachability and TLS, clock skew (SigV4 fails beyond 5 minutes), "
        "the local model files and the microphone. Docs: docs/operations.md",
        epilog=EXAMPLES,
    )
    parser.add_argument(
        "--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1)"
    )
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="streaming endpoint to probe (default: AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING, else the region's)",
    )
    parser.add_argument("--profile", help="AWS profile for the credentials check (default: AWS_PROFILE)")
    parser.add_argument("--ca-file", metavar="PEM", help="trust this CA for the endpoint's TLS certificate")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds allowed for each network step (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    options = DoctorOptions(
        region=args.region,
        endpoint=args.endpoint,
        profile=args.profile,
        ca_file=args.ca_file,
        timeout=args.timeout,
    )
    region, endpoint = describe_target(options)
    results = asyncio.run(diagnose(options))
    if args.json:
        print(report_json(results, region=region, endpoint=endpoint, exit_code=exit_code(results)))
    else:
        print(format_report(results, header=f"beluga doctor: region {region}, endpoint {endpoint}"))
    sys.stdout.flush()
    return exit_code(results)

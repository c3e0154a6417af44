"""``AWSTranscribeSTT``: the Amazon Transcribe Streaming provider (registered as ``aws``)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import ssl
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from beluga_voice.audio.chunker import DEFAULT_CHUNK_MS, chunk_bytes
from beluga_voice.errors import ConfigurationError
from beluga_voice.providers.aws_transcribe.client import ClientOptions, StreamRunner
from beluga_voice.providers.aws_transcribe.config import DEFAULT_REGION, TranscribeConfig, field_names
from beluga_voice.providers.aws_transcribe.protocol import DEFAULT_REPLAY_SECONDS, TranscribeStream
from beluga_voice.providers.aws_transcribe.redaction import redact_url
from beluga_voice.providers.aws_transcribe.regions import Endpoint, resolve_endpoint
from beluga_voice.providers.aws_transcribe.resilience import (
    NO_RECONNECT,
    IdleMode,
    IdlePolicy,
    ReconnectPolicy,
    StreamStats,
)
from beluga_voice.providers.aws_transcribe.signing import (
    MAX_EXPIRES,
    CredentialSource,
    HasCredentials,
    configured_endpoint_url,
    credential_source,
    endpoint_from_url,
    presign_url,
)
from beluga_voice.stt.model import Transcript, TranscriptResult
from beluga_voice.stt.provider import AudioInput, AudioStream, ConnectionListener, STTProvider
from beluga_voice.telemetry.metrics import Telemetry
from beluga_voice.telemetry.stream import StreamTelemetry

logger = logging.getLogger("beluga_voice.aws")

_CONFIG_FIELDS = frozenset(field_names())


class AWSTranscribeSTT(STTProvider):
    """Amazon Transcribe Streaming over WebSocket.

    ``AWSTranscribeSTT(region="eu-west-1", language_code="en-GB", show_speaker_label=True)``; any
    :class:`TranscribeConfig` field is a keyword, or pass ``config=``. Credentials come from
    botocore's chain unless ``credentials=``/``session=``/``profile=`` say otherwise, and are
    resolved again for every connection. ``endpoint_url`` (or ``AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING``)
    points the provider at another endpoint such as ``beluga serve``.

    Streams survive failures: ``reconnect`` (a :class:`ReconnectPolicy`, ``True`` for the default,
    ``False`` for none) replaces a failed connection and replays the audio not yet covered by finals
    (at most ``replay_seconds``); ``idle`` (``"keepalive"``, ``"lazy"``, ``None`` or an
    :class:`IdlePolicy`) keeps a silent stream from the service's 15-second idle timeout.
    """

    name = "aws"

    def __init__(
        self,
        *,
        region: str | None = None,
        language_code: str | None = None,
        sample_rate: int | None = None,
        show_speaker_label: bool | None = None,
        identify_language: bool | None = None,
        language_options: Sequence[str] | str | None = None,
        config: TranscribeConfig | None = None,
        credentials: Any = None,
        session: HasCredentials | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        allow_insecure: bool = False,
        fips: bool = False,
        chunk_ms: int = DEFAULT_CHUNK_MS,
        max_speed: float | None = 1.0,
        connect_timeout: float = 10.0,
        drain_timeout: float = 10.0,
        replay_seconds: float = DEFAULT_REPLAY_SECONDS,
        reconnect: ReconnectPolicy | bool = True,
        idle: IdlePolicy | IdleMode | None = "keepalive",
        url_expires: int = MAX_EXPIRES,
        ssl_context: ssl.SSLContext | None = None,
        telemetry: Telemetry | None = None,
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - _CONFIG_FIELDS)
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) for the aws provider: {', '.join(unknown)}. "
                f"Valid options: {', '.join(sorted(_CONFIG_FIELDS))}"
            )
        explicit = {
            "region": region,
            "language_code": language_code,
            "sample_rate": sample_rate,
            "show_speaker_label": show_speaker_label,
            "identify_language": identify_language,
            "language_options": language_options,
        }
        options.update({k: v for k, v in explicit.items() if v is not None})
        if config is None:
            options.setdefault("region", _default_region(session))
            config = TranscribeConfig(**options)
        elif options:
            config = dataclasses.replace(config, **options)
        config.validate()
        self.config = config
        self.fips = fips
        if url_expires < 1 or url_expires > MAX_EXPIRES:
            raise ConfigurationError(f"url_expires={url_expires} must be 1-{MAX_EXPIRES} seconds")
        self._url_expires = url_expires
        override = configured_endpoint_url(endpoint_url)
        self.endpoint: Endpoint = (
            endpoint_from_url(override, config.region, allow_insecure=allow_insecure)
            if override
            else resolve_endpoint(config.region, fips=fips)
        )
        self._credentials: CredentialSource = credential_source(credentials, session, profile)
        self._chunk_size = chunk_bytes(config.sample_rate, chunk_ms, config.channels)
        if replay_seconds < 0:
            raise ConfigurationError(f"replay_seconds={replay_seconds} must not be negative")
        self._replay_seconds = replay_seconds
        self.reconnect_policy = _reconnect_policy(reconnect)
        self.idle_policy = _idle_policy(idle)
        self._telemetry = telemetry
        if max_speed is not None and max_speed <= 0:
            raise ConfigurationError(f"max_speed={max_speed} must be positive (or None for no pacing)")
        self.client_options = ClientOptions(
            connect_timeout=connect_timeout,
            drain_timeout=drain_timeout,
            max_speed=max_speed,
            ssl_context=ssl_context,
        )
        self.last_stream_stats: StreamStats | None = None
        """Counters of the latest ``stream()`` (live while it runs): reconnects, downtime, replay, keep-alive."""

    @classmethod
    def from_session(cls, boto_session: HasCredentials, **kwargs: Any) -> AWSTranscribeSTT:
        """A provider using a boto3/botocore session's credentials and (unless given) its region."""
        return cls(session=boto_session, **kwargs)

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def channels(self) -> int:
        return self.config.channels

    async def stream(
        self, audio: AudioStream, *, on_connection_event: ConnectionListener | None = None
    ) -> AsyncIterator[TranscriptResult]:
        """Results of a live PCM stream (pieces of any size); ends after the last final.

        Retryable failures are survived (see ``reconnect``); ``on_connection_event`` receives
        ``connected``, ``disconnected``, ``reconnecting``, ``reconnected`` and ``closed`` events.
        """
        policy, idle = self.reconnect_policy, self.idle_policy
        if self.config.media_encoding == "pcm":
            replays = policy.enabled and self._replay_seconds > 0
            overlap = min(policy.overlap_seconds, self._replay_seconds / 2) if replays else 0.0
            voices = policy.speaker_sample_seconds if replays and self.config.show_speaker_label else 0.0
            state = TranscribeStream.for_pcm(
                self.sample_rate, self.channels, self._replay_seconds, overlap, voices
            )
        else:  # compressed audio replays whole frames/pages behind its codec headers (media_replay)
            replays = policy.enabled and self._replay_seconds > 0
            overlap = min(policy.overlap_seconds, self._replay_seconds / 2) if replays else 0.0
            encoding = self.config.media_encoding
            state = TranscribeStream.for_media(encoding, self._replay_seconds if replays else 0.0, overlap)
            # Loudness cannot be read from compressed bytes (no watchdog), nor silence sent (no keep-alive).
            policy = dataclasses.replace(policy, watchdog_timeout=None) if replays else NO_RECONNECT
            idle = None
        options = self.client_options
        if self.config.media_encoding != "pcm" and options.max_speed is not None:
            options = dataclasses.replace(options, max_speed=None)
        stats = StreamStats(state.timeline.stats)
        self.last_stream_stats = stats
        telemetry = StreamTelemetry(
            self.name, self.config.region, self.config.language_code, telemetry=self._telemetry
        )
        runner = StreamRunner(
            self.presigned_url,
            state,
            options,
            chunk_size=media_chunk_size(self.config.media_encoding, self._chunk_size),
            sample_rate=self.sample_rate,
            channels=self.channels,
            policy=policy,
            idle=idle,
            on_event=on_connection_event,
            telemetry=telemetry,
            stats=stats,
        )
        with telemetry:
            async for result in runner.results(audio):
                yield result

    async def transcribe_full(self, audio: AudioInput) -> Transcript:
        if self.config.media_encoding != "pcm":
            raise ConfigurationError(
                f"transcribe() decodes audio to PCM, but media_encoding={self.config.media_encoding!r}; "
                "use the default media_encoding='pcm' (or stream() your encoded bytes yourself)"
            )
        return await super().transcribe_full(audio)

    async def presigned_url(self, connection: int = 1) -> str:
        """A freshly signed URL from freshly resolved credentials (one per connection).

        Every connection gets a new session id, except that the first one uses ``session_id`` when
        it is configured (reusing it on a reconnection would collide with the failed session).
        """
        credentials = await asyncio.to_thread(self._credentials.resolve)
        params = self.config.to_query_params()
        if connection > 1:
            params["session-id"] = str(uuid.uuid4())
        params.setdefault("session-id", str(uuid.uuid4()))
        url = presign_url(self.endpoint, params, credentials, expires=self._url_expires)
        logger.debug("connecting to %s", redact_url(url))
        return url

    def __repr__(self) -> str:
        return (
            f"AWSTranscribeSTT(region={self.config.region!r}, endpoint={self.endpoint.url!r}, "
            f"options={self.config.describe()!r}, credentials={self._credentials!r})"
        )


def media_chunk_size(encoding: str, pcm_chunk_size: int) -> int:
    """Bytes per AudioEvent: ``chunk_ms`` of PCM, or about as long of typical FLAC (half the bytes)
    or Opus (an eighth: 24-64 kbit/s), so compressed audio too goes out in 50-200 ms pieces."""
    if encoding == "flac":
        return max(256, pcm_chunk_size // 2)
    if encoding == "ogg-opus":
        return max(256, pcm_chunk_size // 8)
    return pcm_chunk_size


def _reconnect_policy(reconnect: ReconnectPolicy | bool) -> ReconnectPolicy:
    if isinstance(reconnect, ReconnectPolicy):
        return reconnect
    if isinstance(reconnect, bool):
        return ReconnectPolicy() if reconnect else NO_RECONNECT
    raise ConfigurationError(f"reconnect= takes True, False or a ReconnectPolicy, got {reconnect!r}")


def _idle_policy(idle: IdlePolicy | IdleMode | None) -> IdlePolicy | None:
    if idle is None or isinstance(idle, IdlePolicy):
        return idle
    if idle in ("keepalive", "lazy"):
        return IdlePolicy(mode=idle)
    raise ConfigurationError(f"idle= takes 'keepalive', 'lazy', None or an IdlePolicy, got {idle!r}")


def _default_region(session: object) -> str:
    """Region as botocore users expect it: the session's, then AWS_REGION, then the guide's default."""
    region = getattr(session, "region_name", None)
    if region is None and session is not None:
        get = getattr(session, "get_config_variable", None)
        region = get("region") if get else None
    return str(
        region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    )

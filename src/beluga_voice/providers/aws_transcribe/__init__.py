"""Amazon Transcribe Streaming over WebSocket: config, messages, signing and the STT provider.

``config``, ``messages``, ``transcript_json`` and ``eventstream`` are sans-I/O and shared with
``beluga serve``; ``client`` and ``provider`` are the asyncio side.
"""

from beluga_voice.providers.aws_transcribe.client import ClientOptions, ConnectionInfo
from beluga_voice.providers.aws_transcribe.config import TranscribeConfig
from beluga_voice.providers.aws_transcribe.protocol import (
    ConnectionProtocol,
    StreamTimeline,
    TimelineStats,
    TranscribeStream,
)
from beluga_voice.providers.aws_transcribe.provider import AWSTranscribeSTT
from beluga_voice.providers.aws_transcribe.regions import Endpoint, resolve_endpoint, streaming_regions
from beluga_voice.providers.aws_transcribe.resilience import IdlePolicy, ReconnectPolicy, StreamStats
from beluga_voice.providers.aws_transcribe.signing import (
    ChainCredentials,
    SessionCredentials,
    StaticCredentials,
    presign_url,
)
from beluga_voice.providers.aws_transcribe.transcript_json import (
    parse_transcript_event,
    transcript_event_payload,
)

__all__ = [
    "AWSTranscribeSTT",
    "ChainCredentials",
    "ClientOptions",
    "ConnectionInfo",
    "ConnectionProtocol",
    "Endpoint",
    "IdlePolicy",
    "ReconnectPolicy",
    "SessionCredentials",
    "StaticCredentials",
    "StreamStats",
    "StreamTimeline",
    "TimelineStats",
    "TranscribeConfig",
    "TranscribeStream",
    "parse_transcript_event",
    "presign_url",
    "resolve_endpoint",
    "streaming_regions",
    "transcript_event_payload",
]

"""Amazon Transcribe Streaming over WebSocket: config, codec glue, signing and the STT provider."""

from beluga_voice.providers.aws_transcribe.config import TranscribeConfig
from beluga_voice.providers.aws_transcribe.transcript_json import (
    parse_transcript_event,
    transcript_event_payload,
)

__all__ = ["TranscribeConfig", "parse_transcript_event", "transcript_event_payload"]

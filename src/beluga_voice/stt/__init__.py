"""The STT core: provider interface, result model, registry."""

from beluga_voice.stt.model import (
    Alternative,
    Entity,
    LanguageScore,
    Segment,
    SpeakerTurn,
    Transcript,
    TranscriptResult,
    Word,
    join_words,
)
from beluga_voice.stt.provider import (
    AudioInput,
    AudioStream,
    ConnectionEvent,
    ConnectionListener,
    STTProvider,
)
from beluga_voice.stt.registry import (
    DEFAULT_PROVIDER,
    available_providers,
    create_provider,
    register_provider,
    unregister_provider,
)

__all__ = [
    "DEFAULT_PROVIDER",
    "Alternative",
    "AudioInput",
    "AudioStream",
    "ConnectionEvent",
    "ConnectionListener",
    "Entity",
    "LanguageScore",
    "STTProvider",
    "Segment",
    "SpeakerTurn",
    "Transcript",
    "TranscriptResult",
    "Word",
    "available_providers",
    "create_provider",
    "join_words",
    "register_provider",
    "unregister_provider",
]

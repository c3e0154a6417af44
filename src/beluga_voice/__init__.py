"""beluga-voice: real-time speech-to-text for voice agents."""

from importlib.metadata import PackageNotFoundError, version

from beluga_voice.errors import BelugaError
from beluga_voice.session import SessionConfig, VoiceSession, create_voice_session
from beluga_voice.stt import (
    STTProvider,
    Transcript,
    TranscriptResult,
    Word,
    available_providers,
    create_provider,
    register_provider,
)

try:
    __version__ = version("beluga-voice")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "BelugaError",
    "STTProvider",
    "SessionConfig",
    "Transcript",
    "TranscriptResult",
    "VoiceSession",
    "Word",
    "__version__",
    "available_providers",
    "create_provider",
    "create_voice_session",
    "register_provider",
]

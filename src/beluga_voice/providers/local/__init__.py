"""The embedded local engine: offline streaming speech-to-text with speaker diarization.

``LocalSTT`` is the provider (registry name ``"local"``, the default); ``LocalEngine`` is the loaded
model that many streams share. See docs/local-engine.md.
"""

from beluga_voice.providers.local.engine import DEFAULT_BEAM_SIZE, LocalEngine
from beluga_voice.providers.local.languages import needs_multilingual, supported_service_codes
from beluga_voice.providers.local.model_files import multilingual_installed, multilingual_model_path
from beluga_voice.providers.local.provider import LocalSTT, shared_engine
from beluga_voice.providers.local.streaming import StreamSettings

__all__ = [
    "DEFAULT_BEAM_SIZE",
    "LocalEngine",
    "LocalSTT",
    "StreamSettings",
    "multilingual_installed",
    "multilingual_model_path",
    "needs_multilingual",
    "shared_engine",
    "supported_service_codes",
]

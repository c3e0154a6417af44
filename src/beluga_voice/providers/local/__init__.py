"""The embedded local engine: offline streaming speech-to-text with speaker diarization.

``LocalSTT`` is the provider (registry name ``"local"``, the default); ``LocalEngine`` is the loaded
model that many streams share. See docs/local-engine.md.
"""

from beluga_voice.providers.local.engine import DEFAULT_BEAM_SIZE, LocalEngine
from beluga_voice.providers.local.provider import LocalSTT, shared_engine
from beluga_voice.providers.local.streaming import StreamSettings

__all__ = ["DEFAULT_BEAM_SIZE", "LocalEngine", "LocalSTT", "StreamSettings", "shared_engine"]

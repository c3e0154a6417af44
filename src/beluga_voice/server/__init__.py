"""``beluga serve``: a local server speaking the Amazon Transcribe Streaming WebSocket protocol.

Python use::

    config = ServerConfig(port=0, auth=False, engine=echo_engine)
    async with serve_in_background(config) as server:
        ...  # connect to server.url
"""

from beluga_voice.server.app import TranscribeServer, run_server, serve_in_background
from beluga_voice.server.auth import Credential, CredentialStore
from beluga_voice.server.engine import ENGINES, EchoSTT, EngineFactory, LocalEngineFactory, echo_engine
from beluga_voice.server.exceptions import StreamException
from beluga_voice.server.faults import FaultPlan, StreamFaults
from beluga_voice.server.handshake import STREAM_PATH
from beluga_voice.server.settings import ServerConfig

__all__ = [
    "ENGINES",
    "STREAM_PATH",
    "Credential",
    "CredentialStore",
    "EchoSTT",
    "EngineFactory",
    "FaultPlan",
    "LocalEngineFactory",
    "ServerConfig",
    "StreamException",
    "StreamFaults",
    "TranscribeServer",
    "echo_engine",
    "run_server",
    "serve_in_background",
]

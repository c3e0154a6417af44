"""Voice sessions: an STT provider in, conversation turns out, with an optional agent that replies.

session = create_voice_session(create_provider("local"))
session.on(UserTurnCompleted, lambda e: print(e.turn.speaker, e.turn.text))
await session.start()
await session.process_audio(pcm)   # or session.attach(source)
await session.stop()
"""

from beluga_voice.session.config import SessionConfig
from beluga_voice.session.dispatch import EventCallback, EventStream
from beluga_voice.session.events import (
    AgentReplyCompleted,
    AgentReplyStarted,
    AgentTextDelta,
    ConnectionChanged,
    EndReason,
    ErrorSource,
    FinalTranscript,
    Interruption,
    PartialTranscript,
    SessionEnded,
    SessionError,
    SessionEvent,
    SpeechEnded,
    SpeechStarted,
    StateChanged,
    UserTurnCompleted,
)
from beluga_voice.session.reply import Agent, AudioSink, TextToSpeech
from beluga_voice.session.session import AudioSource, VoiceSession, create_voice_session
from beluga_voice.session.state import ALLOWED_TRANSITIONS, SessionState, SessionStateError
from beluga_voice.session.turns import AGENT_SPEAKER, Role, Turn, TurnMetrics

__all__ = [
    "AGENT_SPEAKER",
    "ALLOWED_TRANSITIONS",
    "Agent",
    "AgentReplyCompleted",
    "AgentReplyStarted",
    "AgentTextDelta",
    "AudioSink",
    "AudioSource",
    "ConnectionChanged",
    "EndReason",
    "ErrorSource",
    "EventCallback",
    "EventStream",
    "FinalTranscript",
    "Interruption",
    "PartialTranscript",
    "Role",
    "SessionConfig",
    "SessionEnded",
    "SessionError",
    "SessionEvent",
    "SessionState",
    "SessionStateError",
    "SpeechEnded",
    "SpeechStarted",
    "StateChanged",
    "TextToSpeech",
    "Turn",
    "TurnMetrics",
    "UserTurnCompleted",
    "VoiceSession",
    "create_voice_session",
]

"""The agent side: what an agent, a TTS hook and an audio sink look like, and how a reply flows."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence

from beluga_voice.errors import ConfigurationError
from beluga_voice.session.turns import Turn

Agent = Callable[[Turn, Sequence[Turn]], Awaitable[str | None] | AsyncIterable[str]]
"""``agent(turn, history)``: an async function returning the reply text (or ``None`` for no reply),
or an async generator yielding it piece by piece. ``history`` is the conversation so far, ``turn``
included."""

TextToSpeech = Callable[[str], AsyncIterable[bytes]]
"""``tts(text)``: audio chunks for a piece of reply text (whole sentences are passed)."""

AudioSink = Callable[[bytes], Awaitable[None]]
"""``await sink(chunk)``: plays or sends the agent's audio; it paces itself (a speaker plays in real
time), which is what keeps the agent "speaking" long enough to be interrupted."""


async def reply_text(agent: Agent, turn: Turn, history: Sequence[Turn]) -> AsyncIterator[str]:
    """The agent's reply as non-empty text pieces, whichever of the two shapes it returns."""
    outcome: object = agent(turn, history)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    if outcome is None:
        return
    if isinstance(outcome, str):
        if outcome:
            yield outcome
        return
    if isinstance(outcome, AsyncIterable):
        async for piece in outcome:
            if not isinstance(piece, str):
                raise ConfigurationError(
                    f"the agent yielded {type(piece).__name__}; an agent's reply stream must yield str"
                )
            if piece:
                yield piece
        return
    raise ConfigurationError(
        f"the agent returned {type(outcome).__name__}; return a str, None, or an async iterator of str"
    )


_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


class SentenceBuffer:
    """Collects streamed reply text into whole sentences, so TTS never speaks half a word."""

    def __init__(self) -> None:
        self._text = ""

    def feed(self, piece: str) -> list[str]:
        self._text += piece
        parts = _SENTENCE_END.split(self._text)
        self._text = parts.pop()
        return [p.strip() for p in parts if p.strip()]

    def flush(self) -> str:
        rest, self._text = self._text.strip(), ""
        return rest

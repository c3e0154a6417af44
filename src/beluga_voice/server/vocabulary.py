"""Vocabulary filters: word lists the server is given by name, applied as the service applies them.

``mask`` replaces a filtered word with ``***``, ``remove`` drops it, ``tag`` keeps it; all three set
``VocabularyFilterMatch`` on the words they touch (removed words are gone, so nothing is left to mark).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from beluga_voice.errors import ConfigurationError
from beluga_voice.stt.model import TranscriptResult, join_words

MASK = "***"
FILTER_NOT_FOUND = "The requested vocabulary filter couldn't be found. Check the vocabulary filter name and try your request again."


def _key(text: str) -> str:
    return text.strip().strip(".,;:!?\"'").lower()


def load_filter(path: str | os.PathLike[str]) -> frozenset[str]:
    """One word per line (blank lines and ``#`` comments skipped), compared without case."""
    source = Path(path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read vocabulary filter file {source}: {exc}") from None
    words = frozenset(_key(line) for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if not words:
        raise ConfigurationError(f"vocabulary filter file {source} lists no words (one word per line)")
    return words


def parse_filter_option(option: str) -> tuple[str, frozenset[str]]:
    """``NAME=FILE`` as given to ``--vocabulary-filter``."""
    name, sep, path = option.partition("=")
    if not sep or not name or not path:
        raise ConfigurationError(f"--vocabulary-filter takes NAME=FILE, got {option!r}")
    return name, load_filter(path)


@dataclass(frozen=True)
class VocabularyFilter:
    words: frozenset[str]
    method: str = "mask"

    @classmethod
    def for_stream(
        cls, configured: Mapping[str, frozenset[str]], names: Iterable[str], method: str | None
    ) -> VocabularyFilter | None:
        """The filter a stream asked for; ``None`` when it asked for none (or the server has none)."""
        wanted = [name for name in names if name]
        if not wanted or not configured:
            return None
        missing = [name for name in wanted if name not in configured]
        if missing:
            raise LookupError(FILTER_NOT_FOUND)
        words = frozenset().union(*(configured[name] for name in wanted))
        return cls(words, method or "mask")

    def apply(self, result: TranscriptResult) -> TranscriptResult:
        kept = []
        touched = False
        for word in result.words:
            if word.is_punctuation or _key(word.text) not in self.words:
                kept.append(word)
                continue
            touched = True
            if self.method == "remove":
                continue
            text = MASK if self.method == "mask" else word.text
            kept.append(replace(word, text=text, vocabulary_filter_match=True))
        if not touched:
            return result
        return replace(result, words=tuple(kept), text=join_words(kept))

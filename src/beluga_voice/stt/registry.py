"""Providers by name: built-ins, explicit registrations, and the ``beluga_voice.providers`` entry points.

Built-ins are named by import path so that listing providers never imports a model runtime.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from beluga_voice.errors import ConfigurationError
from beluga_voice.stt.provider import STTProvider

ENTRY_POINT_GROUP = "beluga_voice.providers"
DEFAULT_PROVIDER = "local"

ProviderFactory = Callable[..., STTProvider]

_BUILTINS: dict[str, str] = {
    "local": "beluga_voice.providers.local:LocalSTT",
    "aws": "beluga_voice.providers.aws_transcribe:AWSTranscribeSTT",
}
_registered: dict[str, ProviderFactory] = {}


def register_provider(name: str, factory: ProviderFactory, *, replace: bool = False) -> None:
    """Make ``factory`` creatable as ``name``; refuses to shadow an existing name unless ``replace``."""
    if not replace and name in available_providers():
        raise ConfigurationError(f"an STT provider named {name!r} is already registered")
    _registered[name] = factory


def unregister_provider(name: str) -> None:
    _registered.pop(name, None)


def available_providers() -> list[str]:
    """Every name ``create_provider`` accepts, sorted."""
    names = set(_BUILTINS) | set(_registered)
    names |= {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def get_provider_factory(name: str) -> ProviderFactory:
    if name in _registered:
        return _registered[name]
    if name in _BUILTINS:
        return _load(_BUILTINS[name])
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            factory: ProviderFactory = ep.load()
            return factory
    raise ConfigurationError(f"unknown STT provider {name!r}; available: {', '.join(available_providers())}")


def create_provider(name: str = DEFAULT_PROVIDER, **options: Any) -> STTProvider:
    """A new provider instance: ``create_provider("aws", region="eu-west-1")``."""
    return get_provider_factory(name)(**options)


def _load(path: str) -> ProviderFactory:
    module_name, _, attr = path.partition(":")
    factory: ProviderFactory = getattr(importlib.import_module(module_name), attr)
    return factory

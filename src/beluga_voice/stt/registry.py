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
        return _load(name, _BUILTINS[name])
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return _load(name, f"{ep.module}:{ep.attr}")
    raise ConfigurationError(
        f"unknown STT provider {name!r}; choose one of: {', '.join(available_providers())} "
        f"(packages add more through the {ENTRY_POINT_GROUP!r} entry-point group)"
    )


def create_provider(name: str = DEFAULT_PROVIDER, **options: Any) -> STTProvider:
    """A new provider instance: ``create_provider("aws", region="eu-west-1")``."""
    return get_provider_factory(name)(**options)


def _load(name: str, path: str) -> ProviderFactory:
    """Import ``module:attr``; a missing dependency becomes one clear error naming the provider."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name.strip())
    except ImportError as exc:
        raise ConfigurationError(
            f"STT provider {name!r} cannot be loaded: {exc}; install the package that provides it "
            "(and its dependencies) or choose another provider."
        ) from exc
    try:
        target: Any = module
        for part in attr.strip().split("."):
            target = getattr(target, part)
    except AttributeError:
        raise ConfigurationError(
            f"STT provider {name!r} points at {path!r}, but {module_name} has no {attr!r}; "
            "the installed package is broken or too old."
        ) from None
    factory: ProviderFactory = target
    return factory

"""The provider registry: built-ins, explicit registrations and entry points of installed packages."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from beluga_voice.aio import as_async_iter
from beluga_voice.errors import ConfigurationError
from beluga_voice.stt.model import TranscriptResult
from beluga_voice.stt.provider import AudioStream, ConnectionListener, STTProvider
from beluga_voice.stt.registry import (
    DEFAULT_PROVIDER,
    ENTRY_POINT_GROUP,
    available_providers,
    create_provider,
    get_provider_factory,
    register_provider,
    unregister_provider,
)


class ByteCounter(STTProvider):
    """A third-party style provider: says how much audio it heard."""

    name = "byte-counter"

    def __init__(self, sample_rate: int = 16000, label: str = "heard") -> None:
        self._rate = sample_rate
        self.label = label

    @property
    def sample_rate(self) -> int:
        return self._rate

    async def stream(
        self, audio: AudioStream, *, on_connection_event: ConnectionListener | None = None
    ) -> AsyncIterator[TranscriptResult]:
        total = 0
        async for piece in as_async_iter(audio):
            total += len(piece)
        yield TranscriptResult("0", False, 0.0, total / 2 / self._rate, f"{self.label} {total} bytes")


@pytest.fixture
def counter_registered() -> Iterator[str]:
    register_provider("byte-counter", ByteCounter)
    yield "byte-counter"
    unregister_provider("byte-counter")


def test_builtins_are_listed_and_local_is_the_default() -> None:
    names = available_providers()
    assert {"local", "aws"} <= set(names)
    assert names == sorted(names)
    assert DEFAULT_PROVIDER == "local"


async def test_a_registered_provider_is_created_by_name_with_options(counter_registered: str) -> None:
    assert counter_registered in available_providers()
    provider = create_provider(counter_registered, sample_rate=8000, label="got")
    assert isinstance(provider, ByteCounter) and provider.sample_rate == 8000
    # 0.5 s of 8 kHz mono s16le, through the provider interface's one-shot call.
    assert await provider.transcribe(b"\0\0" * 4000) == "got 8000 bytes"


def test_a_name_cannot_be_registered_twice_unless_replacing(counter_registered: str) -> None:
    with pytest.raises(ConfigurationError, match="'byte-counter' is already registered"):
        register_provider(counter_registered, ByteCounter)
    with pytest.raises(ConfigurationError, match="'local' is already registered"):
        register_provider("local", ByteCounter)
    register_provider(counter_registered, lambda **kw: ByteCounter(label="replaced"), replace=True)
    assert isinstance(provider := create_provider(counter_registered), ByteCounter)
    assert provider.label == "replaced"


def test_unregistering_removes_the_name(counter_registered: str) -> None:
    unregister_provider(counter_registered)
    assert counter_registered not in available_providers()
    unregister_provider(counter_registered)  # idempotent


def test_an_unknown_name_says_which_names_exist() -> None:
    with pytest.raises(ConfigurationError) as info:
        create_provider("whisper-xl")
    message = str(info.value)
    assert "unknown STT provider 'whisper-xl'" in message
    assert "aws" in message and "local" in message and ENTRY_POINT_GROUP in message


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real installed distribution (dist-info on sys.path) that declares two providers."""
    package = tmp_path / "beluga_test_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from beluga_voice.stt.provider import STTProvider

            class PluginSTT(STTProvider):
                name = "plugin"

                def __init__(self, **options):
                    self.options = options

                @property
                def sample_rate(self):
                    return 16000

                async def stream(self, audio, *, on_connection_event=None):
                    return
                    yield
            """
        )
    )
    dist = tmp_path / "beluga_test_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: beluga-test-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        "plugin = beluga_test_plugin:PluginSTT\n"
        "broken = beluga_test_plugin_missing_dependency:Engine\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    sys.modules.pop("beluga_test_plugin", None)


def test_entry_points_of_installed_packages_become_providers(installed_plugin: Path) -> None:
    assert {"plugin", "broken"} <= set(available_providers())
    provider = create_provider("plugin", language_code="de-DE")
    assert type(provider).__name__ == "PluginSTT"
    assert provider.options == {"language_code": "de-DE"}  # type: ignore[attr-defined]


def test_a_plugin_that_cannot_be_imported_gives_one_clear_error(installed_plugin: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        get_provider_factory("broken")
    message = str(info.value)
    assert "STT provider 'broken' cannot be loaded" in message
    assert "beluga_test_plugin_missing_dependency" in message
    assert "install the package" in message

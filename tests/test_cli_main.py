"""The `beluga` command itself: version, help, exit codes, one-line errors and --debug tracebacks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beluga_voice import __version__
from beluga_voice.cli.main import COMMANDS, main
from beluga_voice.errors import ConfigurationError
from beluga_voice.stt.provider import STTProvider
from beluga_voice.stt.registry import register_provider, unregister_provider

BELUGA = Path(sys.executable).parent / "beluga"


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "tone.wav"
    sf.write(path, np.zeros(1600), 16000)
    return path


def test_the_console_script_prints_its_version() -> None:
    done = subprocess.run([str(BELUGA), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"beluga {__version__}\n", "")
    assert __version__ != "0.0.0", "the installed distribution's version, not the fallback"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: beluga")
    for command in COMMANDS:
        assert command in out
    assert "--debug" in out and "--version" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: beluga {command}")
    assert "examples:" in out


def test_transcribe_help_documents_formats_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    main(["transcribe", "--help"])
    out = capsys.readouterr().out
    for text in (
        "--provider",
        "--format",
        "--speakers",
        "--realtime",
        "--raw",
        "rttm",
        "Exit codes: 0 success",
    ):
        assert text in out


def test_no_command_prints_help_and_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "usage: beluga" in captured.err and "transcribe" in captured.err


def test_an_unknown_command_is_one_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transcibe", "x.wav"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("beluga: error: argument COMMAND: invalid choice: 'transcibe'")
    assert "see `beluga --help`" in err


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_then_the_same_line(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.wav")
    argv = ["--debug", "transcribe", missing] if where == "before" else ["transcribe", missing, "--debug"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "AudioFormatError" in err
    assert err.splitlines()[-1] == f"beluga: error: {missing}: no such file; check the path."


@pytest.fixture
def plugin() -> Iterator[list[str]]:
    """Third-party providers that fail while being created, as a broken plugin would."""

    def buggy(**options: object) -> STTProvider:
        raise RuntimeError("NoneType has no attribute 'decode'")

    def strict(**options: object) -> STTProvider:
        raise ConfigurationError(f"vocabulary 'medical' does not exist (options: {sorted(options)})")

    def interrupted(**options: object) -> STTProvider:
        raise KeyboardInterrupt

    names = {"buggy": buggy, "strict": strict, "interrupted": interrupted}
    for name, factory in names.items():
        register_provider(name, factory)
    yield list(names)
    for name in names:
        unregister_provider(name)


def test_an_unexpected_exception_is_one_line_asking_for_a_report(
    plugin: list[str], wav: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["transcribe", str(wav), "--provider", "buggy"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "beluga: error: internal error: RuntimeError: NoneType has no attribute 'decode' "
        "(run with --debug for the traceback, and please report it)\n"
    )
    assert main(["--debug", "transcribe", str(wav), "--provider", "buggy"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_a_provider_configuration_error_is_a_usage_error(
    plugin: list[str], wav: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["transcribe", str(wav), "--provider", "strict", "--speakers", "--language-code", "en-AU"]) == 2
    )
    err = capsys.readouterr().err
    assert err == (
        "beluga: error: vocabulary 'medical' does not exist (options: ['language_code', 'show_speaker_label'])\n"
    ), "only the options the user set reach the provider"


def test_ctrl_c_exits_130_without_a_traceback(
    plugin: list[str], wav: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["transcribe", str(wav), "--provider", "interrupted"]) == 130
    assert capsys.readouterr().err == "beluga: error: interrupted\n"

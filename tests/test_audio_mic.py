"""The microphone source: clear errors where the extra, PortAudio or a device is missing."""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading

import numpy as np
import pytest

from beluga_voice.audio.mic import Microphone, input_device_name
from beluga_voice.errors import AudioFormatError, ConfigurationError


def environment() -> str:
    """What this machine lacks, found independently of the code under test."""
    try:
        sd = importlib.import_module("sounddevice")
    except ImportError:
        return "no-extra"
    except OSError:
        return "no-portaudio"
    try:
        sd.query_devices(kind="input")
    except Exception:
        return "no-device"
    return "has-device"


async def test_opening_the_microphone_here_says_what_is_missing() -> None:
    missing = environment()
    if missing == "has-device":
        pytest.skip("this machine has a working microphone")
    with pytest.raises(ConfigurationError) as info:
        async with Microphone():
            pass
    message = str(info.value)
    assert "\n" not in message
    expected = {
        "no-extra": "pip install 'beluga-voice[mic]'",
        "no-portaudio": "needs the PortAudio library",
        "no-device": "no microphone: the default input device is not available",
    }[missing]
    assert expected in message
    if missing == "no-portaudio":
        assert "apt install libportaudio2" in message and "brew install portaudio" in message
    with pytest.raises(ConfigurationError) as checked:
        input_device_name()
    assert str(checked.value) == message, "a device check gives the same advice as opening the microphone"


async def test_without_the_mic_extra_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # what Python sees when it is not installed
    with pytest.raises(
        ConfigurationError,
        match=r"needs the 'mic' extra; install it with `pip install 'beluga-voice\[mic\]'`",
    ):
        async with Microphone():
            pass


def test_configuring_a_microphone_needs_no_device_yet() -> None:
    # Runs on machines without PortAudio: nothing touches sounddevice until the microphone opens.
    mic = Microphone(8000, 1, chunk_ms=50)
    assert mic.chunk_size == 800


def test_bad_formats_are_refused_before_touching_a_device() -> None:
    with pytest.raises(AudioFormatError, match="microphone: sample rate 4000 Hz is outside"):
        Microphone(4000)
    with pytest.raises(AudioFormatError, match="microphone: 3 channels is not supported"):
        Microphone(16000, 3)
    with pytest.raises(ConfigurationError, match="chunk duration 10 ms is outside 50-200 ms"):
        Microphone(chunk_ms=10)


def test_iterating_a_microphone_that_was_never_opened_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="the microphone is not open"):
        aiter(Microphone())


async def test_audio_from_the_device_thread_arrives_in_order_and_a_slow_consumer_loses_the_oldest() -> None:
    # PortAudio calls the callback from its own thread; drive the same callback from a real thread.
    mic = Microphone(16000, 1, chunk_ms=100, max_queued_ms=500)  # room for 5 chunks
    mic._attach(asyncio.get_running_loop())
    blocks = [np.full(1600, n, dtype="<i2") for n in range(8)]

    def device_thread() -> None:
        for block in blocks:
            mic._on_audio(block, 1600, None, None)

    feeder = threading.Thread(target=device_thread)
    feeder.start()
    await asyncio.to_thread(feeder.join)
    await asyncio.sleep(0.05)  # let the loop run the callbacks the thread scheduled
    mic.close()
    received = [chunk async for chunk in mic]
    assert [np.frombuffer(c, "<i2")[0] for c in received] == [3, 4, 5, 6, 7], "newest kept, in order"
    assert all(len(c) == mic.chunk_size for c in received)
    assert mic.dropped_chunks == 3
    mic._on_audio(blocks[0], 1600, None, None)
    await asyncio.sleep(0.01)
    assert [c async for c in mic] == [], "nothing arrives after close"

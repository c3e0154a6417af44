"""Live microphone input (the ``mic`` extra): uniform s16le chunks from sounddevice, asynchronously.

sounddevice and PortAudio are imported only when a microphone is opened, so the rest of the library
works on servers without either; where they (or an input device) are missing, opening says exactly
what to install or connect.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from types import ModuleType, TracebackType
from typing import Any

from beluga_voice.audio.chunker import DEFAULT_CHUNK_MS, chunk_bytes
from beluga_voice.audio.pcm import (
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    PCM_SAMPLE_WIDTH,
    check_channels,
    check_sample_rate,
)
from beluga_voice.errors import ConfigurationError

# How much audio may wait for a slow consumer before the oldest is dropped: live speech must stay live.
DEFAULT_MAX_QUEUED_MS = 5000


class Microphone:
    """An async iterable of s16le PCM chunks of ``chunk_ms`` from an input device.

    ``async with Microphone() as mic: async for chunk in mic: ...`` — or hand ``mic`` straight to
    ``provider.stream(mic)``. The stream ends when the context exits (or :meth:`close` is called).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        channels: int = 1,
        *,
        chunk_ms: int = DEFAULT_CHUNK_MS,
        device: int | str | None = None,
        max_queued_ms: int = DEFAULT_MAX_QUEUED_MS,
    ) -> None:
        check_sample_rate(sample_rate, "microphone")
        check_channels(channels, "microphone")
        self.sample_rate = sample_rate
        self.channels = channels
        self.device = device
        self.chunk_size = chunk_bytes(sample_rate, chunk_ms, channels)
        self.dropped_chunks = 0
        """Chunks discarded because the consumer fell more than ``max_queued_ms`` behind."""
        self.device_overflows = 0
        """Callbacks where PortAudio itself reported lost input (the machine was too busy)."""
        self._max_queued = max(1, max_queued_ms // chunk_ms)
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream: Any = None
        self._closed = False

    async def __aenter__(self) -> Microphone:
        self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._loop is None:
            raise ConfigurationError("the microphone is not open: use `async with Microphone() as mic:`")
        return self._chunks()

    def open(self) -> None:
        """Start recording; raises :class:`ConfigurationError` naming what is missing."""
        sd = _import_sounddevice()
        self._attach(asyncio.get_running_loop())
        _check_input_device(sd, self.device, self.channels)
        try:
            self._stream = sd.RawInputStream(
                samplerate=self.sample_rate,
                channels=self.channels,
                dtype="int16",
                blocksize=self.chunk_size // (PCM_SAMPLE_WIDTH * self.channels),
                device=self.device,
                callback=self._on_audio,
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self._stream = None
            raise ConfigurationError(
                f"cannot record from the microphone at {self.sample_rate} Hz, {self.channels} channel(s): {exc}; "
                "try another device or rate (list devices with `python -m sounddevice`)."
            ) from exc

    def close(self) -> None:
        """Stop recording; iteration ends after the chunks already captured."""
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def _on_audio(self, indata: Any, frames: int, time: Any, status: Any) -> None:
        # Runs on PortAudio's thread: copy the buffer and hand it to the event loop.
        if status:
            self.device_overflows += 1
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._enqueue, bytes(indata))

    def _enqueue(self, chunk: bytes) -> None:
        if self._closed:
            return
        if self._queue.qsize() >= self._max_queued:
            self._queue.get_nowait()
            self.dropped_chunks += 1
        self._queue.put_nowait(chunk)

    async def _chunks(self) -> AsyncIterator[bytes]:
        while not (self._closed and self._queue.empty()):
            chunk = await self._queue.get()
            if chunk is None:
                return
            yield chunk


def input_device_name(device: int | str | None = None, channels: int = 1) -> str:
    """The input device ``Microphone(device=...)`` would record from (for checks such as ``beluga doctor``).

    Raises the same :class:`ConfigurationError` as opening a microphone when the extra, PortAudio or
    the device is missing, so every caller gives the same advice.
    """
    return str(_check_input_device(_import_sounddevice(), device, channels)["name"])


def default_input_rate(device: int | str | None = None, channels: int = 1) -> int:
    """The rate the input device records at natively (where it is within 8-48 kHz; else 16 kHz).

    Recording at the device's own rate and resampling in this library works on every device,
    where asking the device for 16 kHz fails on hardware without its own resampler.
    """
    info = _check_input_device(_import_sounddevice(), device, channels)
    rate = round(float(info.get("default_samplerate") or 0))
    return rate if MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE else 16000


def _import_sounddevice() -> ModuleType:
    try:
        return importlib.import_module("sounddevice")
    except ImportError:
        raise ConfigurationError(
            "microphone input needs the 'mic' extra; install it with `pip install 'beluga-voice[mic]'`"
        ) from None
    except OSError as exc:  # sounddevice is installed but cannot find the PortAudio library
        raise ConfigurationError(
            f"microphone input needs the PortAudio library ({exc}); install it "
            "(Debian/Ubuntu: `apt install libportaudio2`, macOS: `brew install portaudio`)."
        ) from None


def _check_input_device(sd: ModuleType, device: int | str | None, channels: int) -> Any:
    wanted = "the default input device" if device is None else f"input device {device!r}"
    try:
        info = sd.query_devices(device, kind="input")
    except (sd.PortAudioError, ValueError) as exc:
        raise ConfigurationError(
            f"no microphone: {wanted} is not available ({exc}); connect one, or pick a device from "
            "`python -m sounddevice`."
        ) from None
    available = int(info["max_input_channels"])
    if available < channels:
        raise ConfigurationError(
            f"{wanted} {info['name']!r} has {available} input channel(s) but {channels} were requested; "
            "record mono or choose another device."
        )
    return info

"""Live audio: PCM that arrives over time (a pipe, a microphone), converted piece by piece.

A live stream has no end to wait for, so nothing here reads "the whole input": a WAV header is parsed
as soon as its bytes arrive (streaming writers such as ``arecord`` and ``ffmpeg -f wav -`` cannot
know the data size and write a placeholder), then every piece of audio is decoded, mixed, resampled
(one :class:`StreamResampler`) and re-cut (one :class:`Chunker`) for the provider the moment it comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import struct
import threading
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import BinaryIO, NoReturn, cast

import numpy as np

from beluga_voice.audio.chunker import DEFAULT_CHUNK_MS, Chunker, chunk_bytes
from beluga_voice.audio.pcm import (
    PCM_SAMPLE_WIDTH,
    FloatArray,
    StreamResampler,
    check_channels,
    check_sample_rate,
    float_to_pcm16,
)
from beluga_voice.audio.reader import decode_audio
from beluga_voice.errors import AudioFormatError

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
UNKNOWN_DATA_SIZE = 0x7FFFFF00
"""Data sizes from here up (and 0) are placeholders of streaming writers: ``ffmpeg`` writes
0xFFFFFFFF, ``arecord`` 0x7FFFFF00 or more. Such a data chunk lasts until the input ends."""
MAX_HEADER_BYTES = 1 << 20
"""A WAV header (with its metadata chunks) larger than this is not a live stream's header."""
WHOLE_FILE_MAGIC = {b"fLaC": "FLAC", b"OggS": "OGG"}
"""Containers that cannot be decoded piece by piece here: read to the end, then transcribed."""
STREAMING_FIX = (
    "pipe WAV (`ffmpeg -i IN -ac 1 -ar 16000 -f wav -`, `arecord -f S16_LE -r 16000 -c 1`) "
    "or declare headerless s16le PCM (--raw --sample-rate HZ --channels N)"
)


@dataclass(frozen=True)
class PcmFormat:
    """Interleaved little-endian PCM: integer samples of ``sample_width`` bytes, or float."""

    sample_rate: int
    channels: int = 1
    sample_width: int = PCM_SAMPLE_WIDTH
    floating: bool = False

    @property
    def frame_bytes(self) -> int:
        return self.sample_width * self.channels

    @property
    def is_s16(self) -> bool:
        return self.sample_width == PCM_SAMPLE_WIDTH and not self.floating

    def describe(self) -> str:
        kind = "float" if self.floating else "PCM"
        return f"{self.sample_width * 8}-bit {kind}, {self.sample_rate} Hz, {self.channels} channel(s)"

    def decode(self, data: bytes) -> FloatArray:
        """Whole frames of ``data`` as float32 samples in [-1, 1], shape (frames, channels)."""
        width = self.sample_width
        if self.floating:
            values = np.frombuffer(data, dtype="<f4" if width == 4 else "<f8")
            samples = np.clip(np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
        elif width == 1:  # 8-bit WAV is unsigned
            samples = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
        elif width == 3:
            raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            joined = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
            samples = ((joined << 8) >> 8).astype(np.float32) / 8388608.0  # sign-extend 24 bits
        else:
            dtype, scale = ("<i2", 32768.0) if width == 2 else ("<i4", 2147483648.0)
            samples = np.frombuffer(data, dtype=dtype).astype(np.float32) / scale
        return np.asarray(samples, dtype=np.float32).reshape(-1, self.channels)


@dataclass(frozen=True)
class WavHeader:
    format: PcmFormat
    data_size: int | None
    """Bytes of audio the header announces; ``None`` for a streaming writer's placeholder."""


class WavHeaderParser:
    """Sans-I/O: feed the first bytes of a stream until :meth:`feed` returns the header.

    What arrived after the header (the first audio) is in :attr:`rest`. Errors name the stream,
    the value found and how to produce a stream that works.
    """

    def __init__(self, name: str = "<stream>") -> None:
        self.name = name
        self.rest = b""
        self._buffer = bytearray()
        self._format: PcmFormat | None = None
        self._offset = 0  # the next chunk header

    def feed(self, data: bytes) -> WavHeader | None:
        self._buffer += data
        if self._offset == 0:
            self._check_riff(bytes(self._buffer[:12]))
            if len(self._buffer) < 12:
                return None
            self._offset = 12
        while len(self._buffer) >= self._offset + 8:
            chunk_id, size = struct.unpack_from("<4sI", self._buffer, self._offset)
            body = self._offset + 8
            if chunk_id == b"data":
                if self._format is None:
                    raise AudioFormatError(
                        f"{self.name}: the WAV stream has its audio data before its 'fmt ' chunk; the header "
                        f"is damaged: {STREAMING_FIX}."
                    )
                self.rest = bytes(self._buffer[body:])
                return WavHeader(self._format, None if size == 0 or size >= UNKNOWN_DATA_SIZE else size)
            end = body + size + (size & 1)  # chunks are padded to an even length
            if end > MAX_HEADER_BYTES:
                raise AudioFormatError(
                    f"{self.name}: the WAV header runs past {MAX_HEADER_BYTES} bytes (chunk "
                    f"{chunk_id!r} of {size} bytes) before any audio; {STREAMING_FIX}."
                )
            if len(self._buffer) < end:
                return None
            if chunk_id == b"fmt ":
                self._format = self._parse_fmt(bytes(self._buffer[body : body + size]))
            self._offset = end
        return None

    def finish(self) -> NoReturn:
        """The input ended before the header was complete."""
        if not self._buffer:
            raise AudioFormatError(f"{self.name}: is empty (0 bytes); there is no audio to transcribe.")
        self._check_riff(bytes(self._buffer[:12]))
        raise AudioFormatError(
            f"{self.name}: the input ended after {len(self._buffer)} bytes, inside the WAV header; the "
            f"writer stopped early or the input is not WAV: {STREAMING_FIX}."
        )

    def _check_riff(self, head: bytes) -> None:
        if not _may_be_riff(head) or (len(head) >= 12 and head[8:12] != b"WAVE"):
            raise AudioFormatError(
                f"{self.name}: is not a WAV stream (it starts with {head[:12]!r}); {STREAMING_FIX}."
            )

    def _parse_fmt(self, body: bytes) -> PcmFormat:
        if len(body) < 16:
            raise AudioFormatError(
                f"{self.name}: the WAV 'fmt ' chunk has {len(body)} bytes, fewer than 16; the header is damaged."
            )
        tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", body)
        if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
            (tag,) = struct.unpack_from("<H", body, 24)  # the first two bytes of the SubFormat GUID
        check_sample_rate(rate, self.name)
        check_channels(channels, self.name)
        width = block_align // channels if channels else 0
        floating = tag == WAVE_FORMAT_IEEE_FLOAT
        supported = (tag == WAVE_FORMAT_PCM and width in (1, 2, 3, 4)) or (floating and width in (4, 8))
        if not supported or bits != width * 8 or block_align != width * channels:
            raise AudioFormatError(
                f"{self.name}: WAV encoding {tag:#06x} with {bits}-bit samples in {block_align}-byte frames "
                "cannot be read; send 16-bit PCM (`ffmpeg ... -c:a pcm_s16le -f wav -`, `arecord -f S16_LE`)."
            )
        return PcmFormat(rate, channels, width, floating)


def _may_be_riff(head: bytes) -> bool:
    """Whether ``head`` (up to 4 bytes and more) can be the start of a RIFF or RF64 header."""
    return any(magic.startswith(head[:4]) for magic in (b"RIFF", b"RF64"))


class LiveConverter:
    """Sans-I/O: PCM pieces of any size in one format to s16le in a provider's rate and channels.

    Keeps the bytes of an incomplete frame for the next piece, and the resampler's filter state
    across pieces, so a stream cut into arbitrary pieces converts exactly like one buffer.
    """

    def __init__(
        self, source: PcmFormat, sample_rate: int, channels: int = 1, name: str = "<stream>"
    ) -> None:
        check_sample_rate(sample_rate, name)
        if channels not in (1, source.channels):
            raise AudioFormatError(
                f"{name}: has {source.channels} channel(s) but {channels} were requested; "
                "channel identification needs a two-channel recording."
            )
        self.source = source
        self.channels = channels
        self.name = name
        self.frames = 0
        """Input frames converted so far."""
        self._partial = b""
        self._passthrough = (
            source.is_s16 and source.sample_rate == sample_rate and source.channels == channels
        )
        self._resampler = (
            StreamResampler(source.sample_rate, sample_rate, channels)
            if source.sample_rate != sample_rate
            else None
        )

    @property
    def seconds(self) -> float:
        return self.frames / self.source.sample_rate

    @property
    def leftover(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest of the frame."""
        return len(self._partial)

    def feed(self, data: bytes) -> bytes:
        data = self._partial + data
        whole = len(data) - len(data) % self.source.frame_bytes
        self._partial = data[whole:]
        if not whole:
            return b""
        self.frames += whole // self.source.frame_bytes
        if self._passthrough:
            return data[:whole]
        samples = self.source.decode(data[:whole])
        if self.channels == 1 and self.source.channels > 1:
            samples = samples.mean(axis=1, keepdims=True, dtype=np.float32)
        if self._resampler is not None:
            samples = self._resampler.process(samples)
        return float_to_pcm16(samples)

    def finish(self) -> bytes:
        """The resampler's tail at the end of the stream (the incomplete frame, if any, is dropped)."""
        return float_to_pcm16(self._resampler.flush()) if self._resampler is not None else b""

    def leftover_error(self) -> AudioFormatError:
        fmt = self.source
        return AudioFormatError(
            f"{self.name}: ended {self.leftover} byte(s) into a frame: the input is not a whole number of "
            f"{fmt.channels}-channel {fmt.sample_width * 8}-bit frames, so it was cut short or the declared "
            "format is wrong (check --raw, --channels, and that the PCM is s16le); the rest was transcribed."
        )


class LiveStream:
    """PCM for a provider from byte pieces that arrive over time (stdin, a microphone).

    ``fmt`` declares headerless PCM; without it the stream must start with a WAV header, which
    :meth:`start` reads (call it before creating the provider: a bad stream fails before any model
    loads). A FLAC or OGG stream is accepted too, but it is decoded only once the input ends.
    """

    def __init__(
        self, pieces: AsyncIterable[bytes], name: str = "<stream>", fmt: PcmFormat | None = None
    ) -> None:
        self.name = name
        self.format = fmt
        self._pieces = aiter(pieces)
        self._first = b""
        self._data_size: int | None = None
        self._whole: str | None = None  # the container of a stream that is decoded at its end
        self._converter: LiveConverter | None = None
        self._started = fmt is not None

    @property
    def seconds(self) -> float:
        """Seconds of input audio converted so far."""
        return self._converter.seconds if self._converter is not None else 0.0

    @property
    def leftover(self) -> int:
        return self._converter.leftover if self._converter is not None else 0

    def ending_error(self) -> AudioFormatError | None:
        """What was wrong with a stream that ended on its own: no audio at all, or a cut frame."""
        if self._converter is None or not self._converter.frames:
            return AudioFormatError(
                f"{self.name}: ended before any audio arrived; there is nothing to transcribe "
                "(check that the writer sends audio)."
            )
        return self._converter.leftover_error() if self._converter.leftover else None

    async def start(self) -> PcmFormat | None:
        """Read the WAV header (if the stream has one); ``None`` for a FLAC/OGG stream."""
        if self._started:
            return self.format
        head = b""
        while len(head) < 12 and (piece := await anext(self._pieces, None)) is not None:
            head += piece
        self._started = True
        if head[:4] in WHOLE_FILE_MAGIC:
            self._whole, self._first = WHOLE_FILE_MAGIC[head[:4]], head
            return None
        parser = WavHeaderParser(self.name)
        header = parser.feed(head)
        while header is None:
            piece = await anext(self._pieces, None)
            if piece is None:
                parser.finish()
            header = parser.feed(piece)
        self.format, self._data_size, self._first = header.format, header.data_size, parser.rest
        return self.format

    async def chunks(
        self, sample_rate: int, channels: int = 1, chunk_ms: int = DEFAULT_CHUNK_MS
    ) -> AsyncIterator[bytes]:
        """s16le chunks of ``chunk_ms`` at ``sample_rate``/``channels``, each as soon as it is complete."""
        await self.start()
        chunker = Chunker(chunk_bytes(sample_rate, chunk_ms, channels))
        if self._whole is not None:
            rest = [self._first] + [piece async for piece in self._pieces]
            audio = decode_audio(b"".join(rest), self.name)
            self.format = PcmFormat(audio.sample_rate, audio.channels)
            # already converted as a whole; the converter only counts what was delivered
            self._converter = LiveConverter(
                PcmFormat(sample_rate, channels), sample_rate, channels, self.name
            )
            for chunk in chunker.feed(self._converter.feed(audio.convert(sample_rate, channels).to_pcm16())):
                yield chunk
        else:
            assert self.format is not None
            converter = self._converter = LiveConverter(self.format, sample_rate, channels, self.name)
            remaining = self._data_size
            piece: bytes | None = self._first
            while piece is not None:
                if remaining is not None:
                    piece, remaining = piece[:remaining], remaining - min(len(piece), remaining)
                for chunk in chunker.feed(converter.feed(piece)):
                    yield chunk
                if remaining == 0:
                    break  # what follows the data chunk (metadata) is not audio
                piece = await anext(self._pieces, None)
            for chunk in chunker.feed(converter.finish()):
                yield chunk
        if rest_bytes := chunker.flush():
            yield rest_bytes


class PipeReader:
    """The bytes of a binary stream (stdin) as they arrive, read on a daemon thread.

    A thread works for every kind of stdin (pipe, terminal, a redirected regular file that the
    event loop cannot watch); being a daemon, a thread blocked in ``read`` on a silent writer never
    keeps the process alive. At most ``max_pending`` pieces wait for the consumer (backpressure).
    """

    def __init__(
        self, stream: BinaryIO, name: str = "<stdin>", *, read_size: int = 65536, max_pending: int = 16
    ) -> None:
        self.stream = stream
        self.name = name
        self.read_size = read_size
        self._room = threading.Semaphore(max_pending)
        self._pieces: deque[bytes | OSError | None] = deque()
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._read1 = _read_available(stream)

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._read, name=f"read {self.name}", daemon=True)
            self._thread.start()
        return self._iterate()

    def stop(self) -> None:
        """Stop now: iteration ends without the pieces read but not yet taken."""
        self._stopped = True
        self._ready.set()
        self._room.release()  # a reader waiting for room sees the stop

    async def _iterate(self) -> AsyncIterator[bytes]:
        while True:
            while not self._pieces and not self._stopped:
                self._ready.clear()
                await self._ready.wait()
            if self._stopped:
                return
            item = self._pieces.popleft()
            self._room.release()
            if item is None:
                return
            if isinstance(item, OSError):
                raise AudioFormatError(
                    f"{self.name}: cannot read the input: {item.strerror or item}"
                ) from item
            yield item

    def _read(self) -> None:
        while True:
            self._room.acquire()
            if self._stopped:
                return
            item: bytes | OSError | None
            try:
                item = self._read1(self.read_size) or None
            except OSError as exc:
                item = exc
            except ValueError:  # the file was closed under us: its reader has gone
                item = None
            if not self._deliver(item) or not isinstance(item, bytes):
                return

    def _deliver(self, item: bytes | OSError | None) -> bool:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening any more
            self._loop.call_soon_threadsafe(self._arrive, item)
            return True
        return False

    def _arrive(self, item: bytes | OSError | None) -> None:
        self._pieces.append(item)
        self._ready.set()


def _read_available(stream: BinaryIO) -> Callable[[int], bytes]:
    """A read that returns what is available now (at least one byte), never waiting to fill the size.

    On a real file descriptor, ``os.read``: a thread blocked in the buffered reader's ``read1``
    would hold its lock, and the interpreter aborts when it closes stdin at exit.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return cast(Callable[[int], bytes], getattr(stream, "read1", stream.read))
    return functools.partial(os.read, fd)

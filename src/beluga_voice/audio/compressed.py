"""FLAC and Ogg Opus streams, sans-I/O: bytes in any pieces in, whole frames/pages and PCM out.

Transcribe's ``media-encoding`` takes ``pcm``, ``flac`` and ``ogg-opus``. The compressed two arrive as
a byte stream cut anywhere (one AudioEvent is not one frame), so this module delimits them itself:

* :class:`FlacFramer` - the ``fLaC`` metadata, then frames found by their sync code. A candidate is a
  frame only if its header checks out (CRC-8, fields consistent with STREAMINFO) and its frame or
  sample number follows the previous frame's, so a sync pattern inside compressed data is never
  taken for a frame. A frame is complete when the next one starts (or the stream ends).
* :class:`OggFramer` - Ogg pages by their ``OggS`` capture pattern, their length from the segment
  table and their CRC, the Opus ID and comment headers, then audio pages with their granule
  positions (48 kHz sample counts).

Each complete frame or page is a :class:`MediaUnit` with its place on the media timeline, which is
what the AWS client needs to replay a valid stream from any frame. :class:`CompressedDecoder` feeds
the units to the codec (PyAV's bundled libFLAC-compatible FLAC and libopus decoders, one decoder
state per stream so Opus stays seamless) and returns float PCM at the stream's declared rate. Memory
is bounded: a framer holds at most one frame or page (plus the codec headers) at a time.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from beluga_voice.audio.pcm import FloatArray, StreamResampler
from beluga_voice.errors import AudioFormatError

CompressedEncoding = Literal["flac", "ogg-opus"]
COMPRESSED_ENCODINGS: tuple[CompressedEncoding, ...] = ("flac", "ogg-opus")

OPUS_RATE = 48000
"""Opus always runs at 48 kHz inside; granule positions count 48 kHz samples."""
MAX_HEADER_BYTES = 256 * 1024
"""Codec headers kept for the whole stream (and re-sent on every reconnection)."""
MAX_FLAC_FRAME_BYTES = 1024 * 1024
"""A FLAC frame of 16-bit stereo at the largest block size is ~256 KiB uncompressed."""
MAX_OGG_PACKET_BYTES = 256 * 1024
"""An Opus packet is at most 120 ms of 8 x 1275-byte frames; anything far larger is corrupt."""


def _error(encoding: str, message: str) -> AudioFormatError:
    return AudioFormatError(f"media-encoding {encoding}: {message}")


@dataclass(frozen=True)
class MediaUnit:
    """One piece of a compressed stream that starts a valid continuation: a FLAC frame or an Ogg page.

    ``start`` and ``samples`` count samples at ``clock_rate`` (FLAC: the stream's rate; Ogg Opus:
    48 kHz, from granule positions). ``offset`` is the unit's first byte in the stream.
    ``packets`` are the codec packets it completes (a FLAC frame is one; an Ogg page may complete
    several, and with ``continued`` it begins with the rest of a packet from the page before).
    """

    data: bytes
    offset: int
    start: int
    samples: int
    packets: tuple[bytes, ...]
    continued: bool = False


class Framer(Protocol):
    """What the decoder and the AWS client's replay need from a FLAC or Ogg framer."""

    encoding: CompressedEncoding

    @property
    def header(self) -> bytes | None:
        """The codec headers that must precede any replayed frames (``None`` until complete)."""

    @property
    def clock_rate(self) -> int:
        """Samples per second of the units' ``start``/``samples`` (known once the header is)."""

    @property
    def pending(self) -> bytes:
        """Bytes received after the last complete unit (the next unit's beginning)."""

    def feed(self, data: bytes) -> list[MediaUnit]: ...

    def finish(self) -> list[MediaUnit]: ...


# --- FLAC ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamInfo:
    """FLAC's STREAMINFO block: what a decoder must know before the first frame."""

    raw: bytes
    min_block: int
    max_block: int
    max_frame: int
    sample_rate: int
    channels: int
    bits: int

    @classmethod
    def parse(cls, raw: bytes) -> StreamInfo:
        min_block, max_block = struct.unpack_from(">HH", raw, 0)
        max_frame = int.from_bytes(raw[7:10], "big")
        packed = int.from_bytes(raw[10:18], "big")
        sample_rate = packed >> 44
        channels = ((packed >> 41) & 0x7) + 1
        bits = ((packed >> 36) & 0x1F) + 1
        return cls(raw, min_block, max_block, max_frame, sample_rate, channels, bits)


_FLAC_RATES = {
    1: 88200, 2: 176400, 3: 192000, 4: 8000, 5: 16000, 6: 22050, 7: 24000,
    8: 32000, 9: 44100, 10: 48000, 11: 96000,
}  # fmt: skip
_FLAC_BITS = {1: 8, 2: 12, 4: 16, 5: 20, 6: 24, 7: 32}


def _crc8_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return table


_CRC8 = _crc8_table()


def _crc8(data: bytes | bytearray) -> int:
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


@dataclass(frozen=True)
class _FrameHeader:
    length: int
    variable: bool
    number: int  # frame number (fixed block size) or first sample (variable)
    block_size: int


def _flac_frame_header(buf: bytearray, at: int, info: StreamInfo) -> _FrameHeader | Literal[False] | None:
    """The frame header at ``at``: parsed, ``None`` if more bytes are needed, ``False`` if not a header."""
    end = len(buf)
    if end - at < 6:
        return None
    b2, b3 = buf[at + 2], buf[at + 3]
    size_code, rate_code = b2 >> 4, b2 & 0xF
    channel_code, bits_code = b3 >> 4, (b3 >> 1) & 0x7
    if size_code == 0 or rate_code == 15 or channel_code > 10 or bits_code == 3 or b3 & 1:
        return False
    if rate_code and rate_code < 12 and _FLAC_RATES[rate_code] != info.sample_rate:
        return False
    if (channel_code + 1 if channel_code < 8 else 2) != info.channels:
        return False
    if bits_code and _FLAC_BITS[bits_code] != info.bits:
        return False
    # The frame/sample number, UTF-8 style: the first byte says how many continuation bytes follow.
    pos = at + 4
    first = buf[pos]
    extra = 0
    while extra < 7 and first & (0x80 >> extra):
        extra += 1
    if extra == 1 or extra > 7:
        return False
    count = extra - 1 if extra else 0
    if pos + 1 + count > end:
        return None
    number = first & (0x7F >> extra) if extra else first
    for byte in buf[pos + 1 : pos + 1 + count]:
        if byte & 0xC0 != 0x80:
            return False
        number = (number << 6) | (byte & 0x3F)
    pos += 1 + count
    if size_code == 1:
        block_size = 192
    elif size_code <= 5:
        block_size = 576 << (size_code - 2)
    elif size_code >= 8:
        block_size = 256 << (size_code - 8)
    else:
        width = 1 if size_code == 6 else 2
        if pos + width > end:
            return None
        block_size = int.from_bytes(buf[pos : pos + width], "big") + 1
        pos += width
    if rate_code >= 12:
        pos += 1 if rate_code == 12 else 2
    if pos + 1 > end:
        return None
    if _crc8(buf[at:pos]) != buf[pos]:
        return False
    return _FrameHeader(pos + 1 - at, bool(buf[at + 1] & 1), number, block_size)


class FlacFramer:
    """A FLAC byte stream cut anywhere -> the metadata, then one :class:`MediaUnit` per frame."""

    encoding: CompressedEncoding = "flac"

    def __init__(self) -> None:
        self._buf = bytearray()
        self._offset = 0  # stream offset of _buf[0]
        self._header: bytes | None = None
        self.info: StreamInfo | None = None
        self._frame: _FrameHeader | None = None  # the frame at _buf[0] (once the metadata is gone)
        self._start = 0  # its first sample
        self._search = 0  # where to look for the next sync code

    @property
    def header(self) -> bytes | None:
        return self._header

    @property
    def clock_rate(self) -> int:
        return self.info.sample_rate if self.info else 0

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)

    def feed(self, data: bytes) -> list[MediaUnit]:
        self._buf += data
        if self._header is None and not self._read_metadata():
            return []
        return self._frames()

    def finish(self) -> list[MediaUnit]:
        if self._header is None:
            if self._buf or self._offset:
                raise _error(
                    "flac",
                    f"the stream ended inside the FLAC metadata (after {self._offset + len(self._buf)} bytes)",
                )
            return []
        units = self._frames()
        if self._frame is None:
            if self._buf:
                raise _error("flac", f"{len(self._buf)} bytes after the last frame are not a FLAC frame")
            return units
        units.append(self._unit(len(self._buf)))
        self._buf.clear()
        self._frame = None
        return units

    # --- metadata ---

    def _read_metadata(self) -> bool:
        buf = self._buf
        if len(buf) >= 4 and buf[:4] != b"fLaC":
            raise _error(
                "flac",
                f"the stream does not start with 'fLaC' (got {bytes(buf[:4])!r}): send a FLAC stream "
                "from its first byte, or declare the encoding the audio has",
            )
        pos = 4
        info: StreamInfo | None = None
        while True:
            if len(buf) < pos + 4:
                return self._header_room(len(buf))
            flags, length = buf[pos], int.from_bytes(buf[pos + 1 : pos + 4], "big")
            kind = flags & 0x7F
            if pos == 4 and (kind != 0 or length != 34):
                raise _error(
                    "flac", "the first metadata block is not a 34-byte STREAMINFO: the stream is corrupt"
                )
            if kind == 127:
                raise _error("flac", f"invalid metadata block type 127 at byte {pos}: the stream is corrupt")
            if len(buf) < pos + 4 + length:
                return self._header_room(pos + 4 + length)
            if kind == 0:
                info = StreamInfo.parse(bytes(buf[pos + 4 : pos + 4 + 34]))
            pos += 4 + length
            if flags & 0x80:
                break
        assert info is not None
        if info.sample_rate == 0 or info.bits < 4:
            raise _error(
                "flac", f"STREAMINFO declares {info.sample_rate} Hz, {info.bits} bits: the stream is corrupt"
            )
        self.info = info
        # What a replay re-sends: STREAMINFO alone, marked last (seek tables, tags, pictures are not needed).
        self._header = b"fLaC" + bytes([0x80]) + (34).to_bytes(3, "big") + info.raw
        self._consume(pos)
        return True

    def _header_room(self, needed: int) -> bool:
        if needed > MAX_HEADER_BYTES:
            raise _error(
                "flac",
                f"the metadata is larger than {MAX_HEADER_BYTES // 1024} KiB (an embedded picture?): "
                "stream audio without large metadata blocks",
            )
        return False

    # --- frames ---

    def _frames(self) -> list[MediaUnit]:
        info = self.info
        assert info is not None
        buf = self._buf
        units: list[MediaUnit] = []
        if self._frame is None:
            if len(buf) < 2:
                return units
            if buf[0] != 0xFF or buf[1] & 0xFE != 0xF8:
                raise _error("flac", f"no frame sync code at byte {self._offset}: the stream is corrupt")
            header = _flac_frame_header(buf, 0, info)
            if header is None:
                return units
            if header is False:
                raise _error("flac", f"an invalid frame header at byte {self._offset}: the stream is corrupt")
            self._frame = header
            self._start = header.number if header.variable else header.number * info.max_block
            self._search = header.length
        sync = bytes(buf[:2])
        while True:
            frame = self._frame
            assert frame is not None
            at = buf.find(sync, self._search)
            if at < 0:
                self._search = max(self._search, len(buf) - 1)
                break
            header = _flac_frame_header(buf, at, info)
            if header is None:
                self._search = at
                break
            expected = self._start + frame.block_size if frame.variable else frame.number + 1
            if header is False or header.number != expected:
                self._search = at + 1
                continue
            units.append(self._unit(at))
            self._frame = header
            self._start += frame.block_size
            self._search = header.length
        limit = max(info.max_frame * 2, 64 * 1024) if info.max_frame else MAX_FLAC_FRAME_BYTES
        if len(buf) > min(limit, MAX_FLAC_FRAME_BYTES):
            raise _error(
                "flac",
                f"no next frame within {len(buf)} bytes of the frame at byte {self._offset} "
                f"(sample {self._start}): the stream is corrupt",
            )
        return units

    def _unit(self, end: int) -> MediaUnit:
        frame = self._frame
        assert frame is not None
        data = bytes(self._buf[:end])
        unit = MediaUnit(data, self._offset, self._start, frame.block_size, (data,))
        self._consume(end)
        return unit

    def _consume(self, count: int) -> None:
        del self._buf[:count]
        self._offset += count


# --- Ogg ----------------------------------------------------------------------------------------

_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def ogg_crc(page: bytes | bytearray) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected, no final xor) at zlib's speed.

    zlib computes the reflected form; on bit-reversed input its result, bit-reversed, is Ogg's.
    """
    reflected = zlib.crc32(bytes(page).translate(_BIT_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


@dataclass(frozen=True)
class OpusHead:
    """The Opus ID header (RFC 7845 section 5.1)."""

    raw: bytes
    channels: int
    pre_skip: int
    input_rate: int
    mapping_family: int


class OggFramer:
    """An Ogg Opus byte stream cut anywhere -> the ID and comment headers, then one unit per page."""

    encoding: CompressedEncoding = "ogg-opus"

    def __init__(self) -> None:
        self._buf = bytearray()
        self._offset = 0
        self._serial: int | None = None
        self._header_pages: list[bytes] = []
        self._header_packets: list[bytes] = []
        self._header: bytes | None = None
        self.head: OpusHead | None = None
        self._partial = bytearray()
        self._has_partial = False
        self._granule = 0  # granule position at the end of the last page that ended a packet
        self.ended = False

    @property
    def header(self) -> bytes | None:
        return self._header

    @property
    def clock_rate(self) -> int:
        return OPUS_RATE

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)

    def feed(self, data: bytes) -> list[MediaUnit]:
        self._buf += data
        units: list[MediaUnit] = []
        while (page := self._next_page()) is not None:
            unit = self._page(*page)
            if unit is not None:
                units.append(unit)
        return units

    def finish(self) -> list[MediaUnit]:
        units = self.feed(b"")
        if self._buf:
            raise _error("ogg-opus", f"the stream ended inside an Ogg page ({len(self._buf)} bytes of it)")
        if self._header is None and self._offset:
            raise _error("ogg-opus", "the stream ended before the Opus headers were complete")
        return units

    def _next_page(self) -> tuple[bytes, int, int, list[int]] | None:
        buf = self._buf
        if len(buf) >= 4 and buf[:4] != b"OggS":
            raise _error(
                "ogg-opus",
                f"no Ogg page at byte {self._offset} (expected the capture pattern 'OggS', got "
                f"{bytes(buf[:4])!r}): the stream is corrupt or not Ogg",
            )
        if len(buf) < 27:
            return None
        if buf[4] != 0:
            raise _error("ogg-opus", f"Ogg page version {buf[4]} at byte {self._offset} is not 0")
        segments = buf[26]
        if len(buf) < 27 + segments:
            return None
        lacing = list(buf[27 : 27 + segments])
        size = 27 + segments + sum(lacing)
        if len(buf) < size:
            return None
        page = bytes(buf[:size])
        stored = struct.unpack_from("<I", page, 22)[0]
        if ogg_crc(page[:22] + b"\0\0\0\0" + page[26:]) != stored:
            raise _error(
                "ogg-opus", f"the Ogg page at byte {self._offset} fails its CRC: the stream is corrupt"
            )
        serial = struct.unpack_from("<I", page, 14)[0]
        if self._serial is None:
            self._serial = serial
        elif serial != self._serial:
            raise _error(
                "ogg-opus",
                f"a second logical stream (serial {serial:#x}) at byte {self._offset}: chained or "
                "multiplexed Ogg is not supported; send one Opus stream",
            )
        offset = self._offset
        del buf[:size]
        self._offset += size
        return page, offset, 27 + segments, lacing

    def _page(self, page: bytes, offset: int, body: int, lacing: list[int]) -> MediaUnit | None:
        flags = page[5]
        granule = struct.unpack_from("<q", page, 6)[0]
        continued = bool(flags & 0x01)
        # A page continuing a packet whose start this stream does not hold (a replay starts mid-packet)
        # drops that packet's rest; a packet left unfinished by a page that is not continued is dropped.
        skip_partial = continued and not self._has_partial
        if not continued and self._has_partial:
            self._partial.clear()
            self._has_partial = False
        packets: list[bytes] = []
        pos = body
        for value in lacing:
            if not skip_partial:
                self._partial += page[pos : pos + value]
                self._has_partial = True
            pos += value
            if value < 255:
                if not skip_partial:
                    packets.append(bytes(self._partial))
                self._partial.clear()
                self._has_partial = False
                skip_partial = False
            elif len(self._partial) > MAX_OGG_PACKET_BYTES:
                raise _error(
                    "ogg-opus", f"a packet larger than {MAX_OGG_PACKET_BYTES} bytes: the stream is corrupt"
                )
        if flags & 0x04:
            self.ended = True
        if self._header is None:
            self._header_page(page, packets, offset, flags)
            return None
        start = self._granule
        if granule != -1:
            self._granule = granule
        samples = max(0, granule - start) if granule != -1 else 0
        return MediaUnit(page, offset, start, samples, tuple(packets), continued)

    def _header_page(self, page: bytes, packets: list[bytes], offset: int, flags: int) -> None:
        if not self._header_pages and not flags & 0x02:
            raise _error(
                "ogg-opus",
                "the first Ogg page is not a beginning-of-stream page: send the stream from its start",
            )
        self._header_pages.append(page)
        if sum(map(len, self._header_pages)) > MAX_HEADER_BYTES:
            raise _error("ogg-opus", f"the Opus headers are larger than {MAX_HEADER_BYTES // 1024} KiB")
        for packet in packets:
            if not self._header_packets:
                self.head = _opus_head(packet)
            elif not packet.startswith(b"OpusTags"):
                raise _error(
                    "ogg-opus", "the second packet is not the OpusTags comment header: the stream is corrupt"
                )
            self._header_packets.append(packet)
        if len(self._header_packets) >= 2:
            if len(self._header_packets) > 2 or self._has_partial:
                raise _error("ogg-opus", "audio shares a page with the comment header (RFC 7845 forbids it)")
            self._header = b"".join(self._header_pages)


def _opus_head(packet: bytes) -> OpusHead:
    if packet.startswith(b"\x01vorbis"):
        raise _error(
            "ogg-opus",
            "the Ogg stream holds Vorbis, not Opus: encode with Opus (e.g. ffmpeg -c:a libopus) or send "
            "media-encoding flac or pcm",
        )
    if not packet.startswith(b"OpusHead") or len(packet) < 19:
        raise _error("ogg-opus", f"the first packet is not an Opus ID header (starts {packet[:8]!r})")
    version, channels, pre_skip, input_rate, _gain, family = struct.unpack_from("<BBHIhB", packet, 8)
    if version >> 4:
        raise _error("ogg-opus", f"Opus header version {version} is not supported (major version must be 0)")
    if channels == 0 or (family == 0 and channels > 2):
        raise _error("ogg-opus", f"the Opus header declares {channels} channels with mapping family {family}")
    return OpusHead(packet, channels, pre_skip, input_rate, family)


def new_framer(encoding: str) -> FlacFramer | OggFramer:
    if encoding == "flac":
        return FlacFramer()
    if encoding == "ogg-opus":
        return OggFramer()
    raise ValueError(f"no framer for media-encoding {encoding!r}")


# --- decoding -----------------------------------------------------------------------------------

_SCALE = {"s16": 32768.0, "s32": 2147483648.0, "u8": 128.0}


@dataclass
class CompressedDecoder:
    """FLAC or Ogg Opus bytes in any pieces -> float32 PCM of shape (frames, channels) at ``sample_rate``.

    The stream's own format is checked against what the request declared: a FLAC stream must have
    the declared rate and channel count; Opus runs at 48 kHz whatever the request says, so it is
    resampled to the declared rate and only its channel count must match.
    """

    encoding: str
    sample_rate: int
    channels: int
    framer: FlacFramer | OggFramer = field(init=False)
    samples_out: int = field(init=False, default=0)
    _codec: Any = field(init=False, default=None)
    _resampler: StreamResampler | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.framer = new_framer(self.encoding)

    def feed(self, data: bytes) -> FloatArray:
        """PCM of every frame (FLAC) or page (Ogg) that ``data`` completed; raises AudioFormatError."""
        return self._decode(self.framer.feed(data), last=False)

    def finish(self) -> FloatArray:
        """The end of the stream: the last frame, and whatever the codec and resampler still hold."""
        return self._decode(self.framer.finish(), last=True)

    def _decode(self, units: list[MediaUnit], *, last: bool) -> FloatArray:
        if self._codec is None and self.framer.header is not None:
            self._open()
        pieces: list[FloatArray] = []
        for unit in units:
            for packet in unit.packets:
                pieces += self._packet(packet, unit)
        if last and self._codec is not None:
            pieces += self._packet(None, None)
        out = np.concatenate(pieces) if pieces else np.zeros((0, self.channels), dtype=np.float32)
        if self._resampler is not None:
            out = self._resampler.process(out, last=last)
        self.samples_out += len(out)
        return out

    def _open(self) -> None:
        import av  # PyAV: FFmpeg's codecs (FLAC, libopus) in its wheel; imported when a stream needs it

        framer = self.framer
        if isinstance(framer, FlacFramer):
            info = framer.info
            assert info is not None
            if info.sample_rate != self.sample_rate:
                raise _error(
                    "flac",
                    f"the FLAC stream is {info.sample_rate} Hz but the request declared sample-rate "
                    f"{self.sample_rate}: declare {info.sample_rate} (or encode at {self.sample_rate} Hz)",
                )
            stream_channels, codec, extradata = info.channels, "flac", info.raw
        else:
            head = framer.head
            assert head is not None
            codec = "libopus" if "libopus" in av.codecs_available else "opus"
            stream_channels, extradata = head.channels, head.raw
            if self.sample_rate != OPUS_RATE:
                self._resampler = StreamResampler(OPUS_RATE, self.sample_rate, self.channels)
        if stream_channels != self.channels:
            raise _error(
                self.encoding,
                f"the stream has {stream_channels} channel(s) but the request declared {self.channels}: "
                + (
                    "a two-channel stream needs enable-channel-identification with number-of-channels 2"
                    if stream_channels == 2
                    else "send a two-channel stream for channel identification"
                ),
            )
        context = av.CodecContext.create(codec, "r")
        context.extradata = extradata
        self._codec = context

    def _packet(self, packet: bytes | None, unit: MediaUnit | None) -> list[FloatArray]:
        import av

        try:
            frames = self._codec.decode(av.Packet(packet) if packet is not None else None)
        except av.FFmpegError as exc:
            where = (
                f" in the {'frame' if self.encoding == 'flac' else 'page'} at byte {unit.offset}"
                if unit
                else ""
            )
            raise _error(
                self.encoding,
                f"the codec cannot decode the audio{where} ({exc.strerror}): the stream is corrupt",
            ) from None
        return [_to_float(frame, self.channels) for frame in frames]


def _to_float(frame: Any, channels: int) -> FloatArray:
    array = frame.to_ndarray()
    name: str = frame.format.name
    planar = name.endswith("p")
    kind = name.removesuffix("p")
    samples = array.T if planar else array.reshape(-1, channels)
    out: FloatArray
    if kind in _SCALE:
        offset = 128.0 if kind == "u8" else 0.0
        out = ((samples.astype(np.float32) - offset) / _SCALE[kind]).astype(np.float32, copy=False)
    else:
        out = np.ascontiguousarray(samples, dtype=np.float32)
    return out

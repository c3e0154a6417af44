"""Audio in: files, raw PCM, live streams, conversion, uniform chunks, real-time pacing, microphone."""

from beluga_voice.audio.chunker import DEFAULT_CHUNK_MS, Chunker, chunk_bytes, iter_chunks, rechunk
from beluga_voice.audio.live import LiveStream, PcmFormat, PipeReader
from beluga_voice.audio.mic import Microphone, default_input_rate
from beluga_voice.audio.pacer import paced
from beluga_voice.audio.pcm import Audio, StreamResampler, float_to_pcm16, pcm16_to_float
from beluga_voice.audio.reader import RawFormat, read_audio

__all__ = [
    "DEFAULT_CHUNK_MS",
    "Audio",
    "Chunker",
    "LiveStream",
    "Microphone",
    "PcmFormat",
    "PipeReader",
    "RawFormat",
    "StreamResampler",
    "chunk_bytes",
    "default_input_rate",
    "float_to_pcm16",
    "iter_chunks",
    "paced",
    "pcm16_to_float",
    "read_audio",
    "rechunk",
]

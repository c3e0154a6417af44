"""Audio in: files, raw PCM, conversion, uniform chunks, real-time pacing, microphone."""

from beluga_voice.audio.chunker import DEFAULT_CHUNK_MS, Chunker, chunk_bytes, iter_chunks, rechunk
from beluga_voice.audio.mic import Microphone
from beluga_voice.audio.pacer import paced
from beluga_voice.audio.pcm import Audio, StreamResampler, float_to_pcm16, pcm16_to_float
from beluga_voice.audio.reader import RawFormat, read_audio

__all__ = [
    "DEFAULT_CHUNK_MS",
    "Audio",
    "Chunker",
    "Microphone",
    "RawFormat",
    "StreamResampler",
    "chunk_bytes",
    "float_to_pcm16",
    "iter_chunks",
    "paced",
    "pcm16_to_float",
    "read_audio",
    "rechunk",
]

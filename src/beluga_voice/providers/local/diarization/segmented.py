"""Who spoke when from the segmentation model: speech, speaker changes and overlaps (file mode).

The shape of pyannote's published pipeline (segmentation-3.0 + embeddings + clustering), with the
CAM++ encoder and this project's clustering:

1. 10 s chunks every ``step`` s over the whole recording; in each, the segmentation model says which
   of up to three local speakers talk in every ~17 ms frame (two at once where they overlap). This
   is the speech detection too: a quiet far-field turn or a "mm-hm" is someone speaking.
2. One voice print per local speaker of each chunk, from the audio where that speaker talks alone.
3. The prints with enough speech are clustered over the whole file (average linkage stopped at a
   calibrated similarity, the eigengap as a second opinion, both bounded by the user's hints). Every
   local speaker, short ones included, then takes the closest global speaker, two local speakers of
   one chunk never the same one: a "Hello?" under someone else's turn keeps a voice of its own.
4. The chunks' frames are laid back on the recording's timeline: each frame has as many speakers as
   the overlapping chunks say on average (so overlaps keep two), the most active global speakers.

Nothing reads the clock; ties go to the lowest index: the same file gets the same labels every run.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from beluga_voice.providers.local.diarization.agglomerative import (
    average_linkage,
    cosine_similarities,
    eigengap_count,
    first_appearance_order,
)
from beluga_voice.providers.local.diarization.calibration import merge_threshold
from beluga_voice.providers.local.diarization.hints import SpeakerHints
from beluga_voice.providers.local.diarization.segmentation import (
    CHUNK_SAMPLES,
    FRAME_STEP,
    MAX_SPEAKERS,
    RECEPTIVE_FIELD,
    SegmentationModel,
    powerset_to_speakers,
)
from beluga_voice.providers.local.diarization.turns import normalize_level

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
SAMPLE_RATE = 16000
FRAME_SECONDS = FRAME_STEP / SAMPLE_RATE
_BATCH = 1  # chunks per segmentation call: 4 at once peaked 36 MB higher and ran no faster


class VoiceEncoder(Protocol):
    """What the diarizers need of a speaker encoder (``LocalEngine.speaker_encoder()``)."""

    def embed_many(self, pieces: list[FloatArray]) -> FloatArray: ...


@dataclass(frozen=True)
class SegmentedSettings:
    step: float = 2.5  # s between chunk starts (pyannote uses 1 s; 2.5 s costs 2.5 times less)
    min_cluster_speech: float = 1.0  # s of solo speech a local speaker needs to be clustered
    min_embed_speech: float = 0.25  # s; a local speaker with less speech than this is ignored
    # Average-linkage stop (cosine similarity); None: the figure calibrated for the encoder in use.
    merge_threshold: float | None = None
    max_auto_speakers: int = 8
    eigengap_keep: float = 0.3
    min_gap: float = 0.1  # s; a speaker's silences shorter than this are bridged
    split_pause: float = 0.5  # s; a local speaker's runs further apart are voiced and clustered apart


@dataclass(frozen=True)
class Track:
    """One stretch of one speaker (global index), in seconds; tracks of two speakers may overlap."""

    speaker: int
    start: float
    end: float


@dataclass(frozen=True)
class _Local:
    """One run of one local speaker in one chunk (frames ``first`` to ``last``, exclusive)."""

    chunk: int
    index: int  # local speaker 0..2
    first: int
    last: int
    solo: float  # s of speech without anyone else


class SegmentedDiarizer:
    def __init__(
        self,
        segmentation: SegmentationModel,
        encoder: VoiceEncoder,
        settings: SegmentedSettings = SegmentedSettings(),
    ) -> None:
        self.segmentation = segmentation
        self.encoder = encoder
        self.settings = settings

    def diarize(self, samples: FloatArray, hints: SpeakerHints) -> list[Track]:
        samples = np.asarray(samples, np.float32)
        if samples.size < RECEPTIVE_FIELD:
            return []
        starts = chunk_starts(samples.size, round(self.settings.step * SAMPLE_RATE))
        activity = self._segment(samples, starts)  # (chunks, frames, 3)
        locals_, prints = self._embed(samples, starts, activity)
        if not locals_:
            return []
        speakers = self._cluster(locals_, prints, hints)
        return self._reconstruct(samples.size, starts, activity, locals_, speakers)

    # -- steps ------------------------------------------------------------------------------------

    def _segment(self, samples: FloatArray, starts: Sequence[int]) -> FloatArray:
        padded = np.zeros(max(samples.size, CHUNK_SAMPLES), np.float32)
        padded[: samples.size] = samples
        chunks = np.stack([padded[a : a + CHUNK_SAMPLES] for a in starts])
        out = [
            powerset_to_speakers(self.segmentation.log_powerset(chunks[k : k + _BATCH]))
            for k in range(0, len(starts), _BATCH)
        ]
        activity: FloatArray = np.concatenate(out)
        valid = (samples.size - np.asarray(starts)) // FRAME_STEP  # frames past the end are padding
        for c, frames in enumerate(valid.tolist()):
            activity[c, max(frames, 0) :] = 0
        return activity

    def _embed(
        self, samples: FloatArray, starts: Sequence[int], activity: FloatArray
    ) -> tuple[list[_Local], FloatArray]:
        s = self.settings
        locals_: list[_Local] = []
        pieces: list[FloatArray] = []
        spans = _frame_spans(activity.shape[1])
        pause = round(s.split_pause / FRAME_SECONDS)
        for c, start in enumerate(starts):
            alone = activity[c].sum(axis=1) == 1
            for k in range(MAX_SPEAKERS):
                # A local speaker's runs apart by a pause are voiced separately: the segmentation
                # model sometimes gives two people who take turns the same local index.
                for first, last in _bridged_runs(activity[c, :, k] > 0, pause):
                    active = np.zeros(activity.shape[1], bool)
                    active[first:last] = activity[c, first:last, k] > 0
                    solo = active & alone
                    chosen = solo if solo.sum() * FRAME_SECONDS >= s.min_embed_speech else active
                    if chosen.sum() * FRAME_SECONDS < s.min_embed_speech:
                        continue
                    audio = np.concatenate(
                        [samples[start + a : start + b] for a, b in _runs_to_samples(chosen, spans)]
                    )
                    locals_.append(_Local(c, k, first, last, float(solo.sum() * FRAME_SECONDS)))
                    pieces.append(normalize_level(audio))
        if not pieces:
            return [], np.zeros((0, 1), np.float32)
        batches = [self.encoder.embed_many(pieces[k : k + 8]) for k in range(0, len(pieces), 8)]
        prints: FloatArray = np.concatenate(batches)
        return locals_, prints.astype(np.float32)

    def _cluster(self, locals_: list[_Local], prints: FloatArray, hints: SpeakerHints) -> IntArray:
        """A global speaker per local speaker (the cannot-link of one chunk respected)."""
        s = self.settings
        trusted = np.array([item.solo >= s.min_cluster_speech for item in locals_])
        if not trusted.any():
            trusted[int(np.argmax([item.solo for item in locals_]))] = True
        core = prints[trusted]
        similarity = cosine_similarities(core)
        high = min(hints.high or s.max_auto_speakers, core.shape[0])
        low = min(hints.low, high)
        threshold = s.merge_threshold if s.merge_threshold is not None else merge_threshold(self.encoder)
        labels = average_linkage(similarity, stop_below=threshold, min_clusters=low, max_clusters=high)
        count = int(labels.max()) + 1
        if hints.num_speakers is None and count > max(2, low):
            eigen = eigengap_count(similarity, max(2, low), count, s.eigengap_keep)
            if eigen < count:
                sizes = np.bincount(labels, minlength=count)
                kept = sorted(np.argsort(-sizes, kind="stable")[:eigen].tolist())
                seeds = _centroids(core, labels, count)[kept]
                labels = np.argmax(core.astype(np.float64) @ seeds.T, axis=1).astype(np.int64)
                count = eigen
        centroids = _centroids(core, labels, count)
        affinity = prints.astype(np.float64) @ centroids.T  # (locals, speakers)
        out = np.zeros(len(locals_), np.int64)
        for rows in _simultaneous_groups(locals_):
            out[rows] = _best_distinct(affinity[rows])
        return out

    def _reconstruct(
        self,
        n_samples: int,
        starts: Sequence[int],
        activity: FloatArray,
        locals_: list[_Local],
        speakers: IntArray,
    ) -> list[Track]:
        count = int(speakers.max()) + 1
        n_frames = activity.shape[1]
        total = int(np.ceil(n_samples / FRAME_STEP)) + 1
        weights = np.hamming(n_frames + 2)[1:-1]  # a chunk's edges see less context: trust them less
        score = np.zeros((total, count))
        voices = np.zeros(total)
        norm = np.zeros(total)
        mapped = np.zeros((len(starts), n_frames, count), np.float32)
        for item, speaker in zip(locals_, speakers.tolist(), strict=True):
            run = slice(item.first, item.last)
            mapped[item.chunk, run, speaker] = np.maximum(
                mapped[item.chunk, run, speaker], activity[item.chunk, run, item.index]
            )
        for c, start in enumerate(starts):
            offset = round(start / FRAME_STEP)
            end = min(offset + n_frames, total)
            width = end - offset
            frames_left = max(0, min(width, (n_samples - start) // FRAME_STEP))
            w = weights[:frames_left]
            score[offset : offset + frames_left] += w[:, None] * mapped[c, :frames_left]
            voices[offset : offset + frames_left] += w * activity[c, :frames_left].sum(axis=1)
            norm[offset : offset + frames_left] += w
        seen = norm > 0
        score[seen] /= norm[seen, None]
        speaking = np.zeros(total, np.int64)
        speaking[seen] = np.rint(voices[seen] / norm[seen]).astype(np.int64)
        speaking = np.minimum(speaking, count)
        order = np.argsort(-score, axis=1, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(count)[None, :].repeat(total, axis=0), axis=1)
        on = (ranks < speaking[:, None]) & (score > 0)
        tracks: list[Track] = []
        centre0 = (RECEPTIVE_FIELD - 1) / 2 / SAMPLE_RATE
        gap_frames = round(self.settings.min_gap / FRAME_SECONDS)
        for speaker in range(count):
            for a, b in _bridged_runs(on[:, speaker], gap_frames):
                begin = max(0.0, centre0 + (a - 0.5) * FRAME_SECONDS)
                finish = min(n_samples / SAMPLE_RATE, centre0 + (b - 0.5) * FRAME_SECONDS)
                if finish > begin:
                    tracks.append(Track(speaker, round(begin, 3), round(finish, 3)))
        tracks.sort(key=lambda t: (t.start, t.speaker))
        order_seen = first_appearance_order(np.array([t.speaker for t in tracks], np.int64))
        return [Track(int(k), t.start, t.end) for t, k in zip(tracks, order_seen.tolist(), strict=True)]


def chunk_starts(n_samples: int, step: int) -> list[int]:
    """Sample offsets of 10 s chunks every ``step`` samples; the last one ends with the audio."""
    if n_samples <= CHUNK_SAMPLES:
        return [0]
    starts = list(range(0, n_samples - CHUNK_SAMPLES + 1, step))
    if starts[-1] + CHUNK_SAMPLES < n_samples:
        starts.append(n_samples - CHUNK_SAMPLES)
    return starts


def _frame_spans(n_frames: int) -> npt.NDArray[np.int64]:
    """(frames, 2) sample span of each frame within a chunk: a frame step around its centre."""
    centres = np.arange(n_frames) * FRAME_STEP + (RECEPTIVE_FIELD - 1) // 2
    return np.stack([centres - FRAME_STEP // 2, centres + FRAME_STEP - FRAME_STEP // 2], axis=1).astype(
        np.int64
    )


def _runs_to_samples(mask: npt.NDArray[np.bool_], spans: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    return [(int(spans[a, 0]), int(spans[b - 1, 1])) for a, b in _bridged_runs(mask, 0)]


def _bridged_runs(mask: npt.NDArray[np.bool_], gap: int) -> list[tuple[int, int]]:
    """[start, end) frame runs where ``mask`` is set, silences of at most ``gap`` frames bridged."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    merged: list[tuple[int, int]] = []
    for a, b in runs:
        if merged and a - merged[-1][1] <= gap:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def _simultaneous_groups(locals_: Sequence[_Local]) -> list[list[int]]:
    """Rows of runs that overlap in time within one chunk (chained): they are different people."""
    groups: list[list[int]] = []
    for row, item in enumerate(locals_):
        for group in groups:
            if any(
                locals_[other].chunk == item.chunk
                and locals_[other].first < item.last
                and item.first < locals_[other].last
                for other in group
            ):
                group.append(row)
                break
        else:
            groups.append([row])
    return groups


def _best_distinct(affinity: npt.NDArray[np.float64]) -> IntArray:
    """Rows to distinct columns with the highest total affinity (rows <= 3: exhaustive)."""
    rows, cols = affinity.shape
    if rows > cols or rows > MAX_SPEAKERS:  # more runs than speakers allowed: each takes its closest
        closest: IntArray = np.argmax(affinity, axis=1).astype(np.int64)
        return closest
    best: tuple[int, ...] = tuple(range(rows))
    best_total = float("-inf")
    for chosen in itertools.permutations(range(cols), rows):
        total = float(sum(affinity[r, c] for r, c in enumerate(chosen)))
        if total > best_total + 1e-12:
            best, best_total = chosen, total
    return np.array(best, np.int64)


def _centroids(prints: FloatArray, labels: IntArray, count: int) -> npt.NDArray[np.float64]:
    out = np.zeros((count, prints.shape[1]), np.float64)
    for k in range(count):
        out[k] = prints[labels == k].astype(np.float64).sum(axis=0)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out

"""Who spoke when over a whole recording, in one deterministic pass (file mode).

With the segmentation model (what file mode uses): speech, speaker changes and overlapped speech
from pyannote's segmentation-3.0, voice prints per local speaker, one clustering over the file
(segmented.py); segments of two speakers may overlap.

Without it (``segmentation=None``: the calibration bench compares encoders on plain windows):

1. Speech regions from Silero VAD (not from decoded words).
2. Voice prints of sliding windows (``window`` s every ``hop`` s) inside each region; regions
   shorter than a window give one print of their own.
3. The prints of full windows are clustered over the whole file (average linkage stopped at a
   calibrated similarity, the eigengap of the similarity graph as a second opinion on the count,
   both bounded by the user's hints). Short pieces then join the closest speaker.
4. Every 50 ms of speech takes the speaker of the window centred nearest it; runs too short to be
   a turn are absorbed by their neighbours.

The decisions depend only on the samples: no clock, no threads, ties broken by position, so a
file gets the same labels on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

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
from beluga_voice.providers.local.diarization.regions import OPENING_MARKS, RegionSettings, speech_regions
from beluga_voice.providers.local.diarization.segmentation import SegmentationModel
from beluga_voice.providers.local.diarization.segmented import (
    SegmentedDiarizer,
    SegmentedSettings,
    VoiceEncoder,
)
from beluga_voice.providers.local.diarization.turns import normalize_level
from beluga_voice.stt.model import Word

FloatArray = npt.NDArray[np.float32]
SAMPLE_RATE = 16000
_OVERLAP_TIE = 0.05  # s; words covered this alike by two segments go to the longer one
_BATCH = 8  # windows per encoder call: with CAM++, 8 peaked 170 MB lower than 32 and ran no slower


@dataclass(frozen=True)
class OfflineSettings:
    """Every tunable of file-mode diarization, in one place (thresholds depend on the encoder)."""

    window: float = 1.5  # s of audio per voice print
    hop: float = 0.75  # s between window starts
    min_piece: float = 0.25  # s; speech shorter than this gets its neighbours' speaker
    # Average-linkage merging stops below this cosine similarity between groups of windows;
    # None: the figure calibrated for the encoder in use (calibration.py).
    merge_threshold: float | None = None
    max_auto_speakers: int = 8  # without a hint, never more than this
    eigengap_keep: float = 0.3
    frame: float = 0.05  # s; resolution of the output
    min_run: float = 0.5  # s; a shorter run of one speaker inside a region joins a neighbour
    regions: RegionSettings = field(default_factory=RegionSettings)
    segmented: SegmentedSettings = field(default_factory=SegmentedSettings)


@dataclass(frozen=True)
class SpeakerSegment:
    speaker: str
    start: float
    end: float


@dataclass(frozen=True)
class _Piece:
    start: float
    end: float
    full: bool  # a whole window (trusted for clustering), or a short region's own piece

    @property
    def centre(self) -> float:
        return 0.5 * (self.start + self.end)


class OfflineDiarizer:
    """Speaker segments of a whole 16 kHz mono recording."""

    def __init__(
        self,
        encoder: VoiceEncoder,
        settings: OfflineSettings = OfflineSettings(),
        segmentation: SegmentationModel | None = None,
    ) -> None:
        self.encoder = encoder
        self.settings = settings
        self.segmentation = segmentation

    def diarize(
        self,
        samples: FloatArray,
        hints: SpeakerHints | None = None,
        regions: Sequence[tuple[float, float]] | None = None,
    ) -> list[SpeakerSegment]:
        """Speaker segments in order of start; with the segmentation model, the speech it finds
        (``regions`` unused) and overlapping segments where two speak; without it, segments
        within the speech ``regions`` (found with Silero if not given), never overlapping."""
        hints = hints or SpeakerHints()
        if self.segmentation is not None:
            diarizer = SegmentedDiarizer(self.segmentation, self.encoder, self.settings.segmented)
            tracks = diarizer.diarize(samples, hints)
            return [SpeakerSegment(str(t.speaker), t.start, t.end) for t in tracks]
        if regions is None:
            regions = speech_regions(samples, self.settings.regions)
        pieces = self._pieces(regions)
        if not pieces:
            return []
        prints = self._embed(samples, pieces)
        labels = self._cluster(prints, pieces, hints)
        return self._segments(regions, pieces, labels)

    # -- steps ------------------------------------------------------------------------------------

    def _pieces(self, regions: Sequence[tuple[float, float]]) -> list[_Piece]:
        s = self.settings
        pieces: list[_Piece] = []
        for start, end in regions:
            length = end - start
            if length < s.min_piece:
                continue
            if length < s.window:
                pieces.append(_Piece(start, end, False))
                continue
            count = int(np.floor((length - s.window) / s.hop + 1e-9)) + 1
            starts = [start + k * s.hop for k in range(count)]
            if end - (starts[-1] + s.window) > 0.25 * s.hop:  # the tail gets a window of its own
                starts.append(end - s.window)
            pieces.extend(_Piece(a, a + s.window, True) for a in starts)
        return pieces

    def _embed(self, samples: FloatArray, pieces: Sequence[_Piece]) -> FloatArray:
        audio = [
            normalize_level(samples[round(p.start * SAMPLE_RATE) : round(p.end * SAMPLE_RATE)])
            for p in pieces
        ]
        batches = [self.encoder.embed_many(audio[k : k + _BATCH]) for k in range(0, len(audio), _BATCH)]
        out: FloatArray = np.concatenate(batches).astype(np.float32)
        return out

    def _cluster(
        self, prints: FloatArray, pieces: Sequence[_Piece], hints: SpeakerHints
    ) -> npt.NDArray[np.int64]:
        """A speaker index per piece: full windows clustered, then everything assigned to the
        closest speaker print (one refinement pass, so early merges do not freeze mistakes)."""
        s = self.settings
        trusted = np.array([p.full for p in pieces])
        if not trusted.any():  # only short pieces: cluster them all, they are all there is
            trusted[:] = True
        core = prints[trusted]
        similarity = cosine_similarities(core)
        high = min(hints.high or s.max_auto_speakers, core.shape[0])
        low = min(hints.low, high)
        threshold = s.merge_threshold if s.merge_threshold is not None else merge_threshold(self.encoder)
        labels = average_linkage(similarity, stop_below=threshold, min_clusters=low, max_clusters=high)
        count = int(labels.max()) + 1
        if hints.num_speakers is None and count > max(2, low):
            # The merge threshold tells one voice from several; with several, it tends to split a
            # voice whose windows vary (a phone line, a laugh). The eigengap of the similarity
            # graph, at most the threshold's count, says how many groups there really are.
            eigen = eigengap_count(similarity, max(2, low), count, s.eigengap_keep)
            if eigen < count:  # the largest groups are the speakers; the small ones join them
                sizes = np.bincount(labels, minlength=count)
                kept = sorted(np.argsort(-sizes, kind="stable")[:eigen].tolist())
                seeds = _centroids(core, labels, count)[kept]
                labels = np.argmax(core.astype(np.float64) @ seeds.T, axis=1).astype(np.int64)
                count = eigen
        centroids = _centroids(core, labels, count)
        all_labels = np.argmax(prints.astype(np.float64) @ centroids.T, axis=1)
        centroids = _centroids(prints[trusted], all_labels[trusted], count, fallback=centroids)
        final: npt.NDArray[np.int64] = np.argmax(prints.astype(np.float64) @ centroids.T, axis=1).astype(
            np.int64
        )
        return final

    def _segments(
        self, regions: Sequence[tuple[float, float]], pieces: Sequence[_Piece], labels: npt.NDArray[np.int64]
    ) -> list[SpeakerSegment]:
        s = self.settings
        centres = np.array([p.centre for p in pieces])
        runs: list[tuple[int, float, float]] = []  # (speaker index, start, end)
        for start, end in regions:
            edges = np.arange(start, end, s.frame)
            if edges.size == 0:
                continue
            middles = np.minimum(edges + s.frame / 2, end)
            nearest = np.argmin(np.abs(middles[:, None] - centres[None, :]), axis=1)
            frame_labels = labels[nearest].tolist()
            bounds = [*edges.tolist(), end]
            runs.extend(_smooth(_runs(frame_labels, bounds), s.min_run))
        order = first_appearance_order(np.array([r[0] for r in runs], np.int64))
        merged: list[SpeakerSegment] = []
        for (_, start, end), speaker in zip(runs, order.tolist(), strict=True):
            label = str(speaker)
            if merged and merged[-1].speaker == label and start - merged[-1].end < 1e-6:
                merged[-1] = replace(merged[-1], end=end)
            else:
                merged.append(SpeakerSegment(label, round(start, 3), round(end, 3)))
        return merged


def _centroids(
    prints: FloatArray,
    labels: npt.NDArray[np.int64],
    count: int,
    fallback: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    out = np.zeros((count, prints.shape[1]), np.float64)
    for k in range(count):
        members = prints[labels == k]
        if members.shape[0]:
            out[k] = members.astype(np.float64).sum(axis=0)
        elif fallback is not None:
            out[k] = fallback[k]
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def _runs(labels: Sequence[int], bounds: Sequence[float]) -> list[tuple[int, float, float]]:
    runs: list[tuple[int, float, float]] = []
    for index, label in enumerate(labels):
        if runs and runs[-1][0] == label:
            runs[-1] = (label, runs[-1][1], bounds[index + 1])
        else:
            runs.append((label, bounds[index], bounds[index + 1]))
    return runs


def _smooth(runs: list[tuple[int, float, float]], min_run: float) -> list[tuple[int, float, float]]:
    """Runs shorter than ``min_run`` take the speaker of their longer neighbour (shortest first)."""
    runs = list(runs)
    while len(runs) > 1:
        lengths = [end - start for _, start, end in runs]
        shortest = int(np.argmin(lengths))
        if lengths[shortest] >= min_run:
            break
        left = runs[shortest - 1] if shortest > 0 else None
        right = runs[shortest + 1] if shortest + 1 < len(runs) else None
        take_left = right is None or (left is not None and left[2] - left[1] >= right[2] - right[1])
        _, start, end = runs[shortest]
        if take_left and left is not None:
            runs[shortest - 1 : shortest + 1] = [(left[0], left[1], end)]
        elif right is not None:
            runs[shortest : shortest + 2] = [(right[0], start, right[2])]
        merged: list[tuple[int, float, float]] = []
        for run in runs:  # neighbours that now agree become one run
            if merged and merged[-1][0] == run[0]:
                merged[-1] = (run[0], merged[-1][1], run[2])
            else:
                merged.append(run)
        runs = merged
    return runs


def label_words(words: Sequence[Word], segments: Sequence[SpeakerSegment]) -> list[Word]:
    """Every item with a speaker: a word takes the segment it overlaps most (the nearest one if it
    overlaps none); punctuation takes the speaker of the word it is attached to.

    Where two speakers' segments both cover a word (overlapped speech), the word keeps one speaker:
    the one whose turn it is, i.e. the longer segment (a backchannel under someone's turn does not
    take their words)."""
    if not words:
        return []
    if not segments:
        return [replace(w, speaker="0") for w in words]
    starts = np.array([seg.start for seg in segments])
    ends = np.array([seg.end for seg in segments])
    out: list[Word | None] = []
    for word in words:
        if word.is_punctuation:
            out.append(None)
            continue
        overlap = np.minimum(ends, word.end) - np.maximum(starts, word.start)
        if overlap.max() > 0:
            covering = overlap >= overlap.max() - _OVERLAP_TIE
            best = int(np.argmax(np.where(covering, ends - starts, -np.inf)))
        else:
            gap = np.maximum(starts - word.end, word.start - ends)
            best = int(np.argmin(gap))
        out.append(replace(word, speaker=segments[best].speaker))
    return _punctuation_follows(words, out)


def _punctuation_follows(words: Sequence[Word], labelled: Sequence[Word | None]) -> list[Word]:
    """Opening marks take the next word's speaker, the others the previous word's."""
    spoken = [w.speaker for w in labelled if w is not None]
    result: list[Word] = []
    for index, (word, done) in enumerate(zip(words, labelled, strict=True)):
        if done is not None:
            result.append(done)
            continue
        before = next((w.speaker for w in reversed(labelled[:index]) if w is not None), None)
        after = next((w.speaker for w in labelled[index + 1 :] if w is not None), None)
        opening = word.text[:1] in OPENING_MARKS
        speaker = (after or before) if opening else (before or after)
        result.append(replace(word, speaker=speaker or (spoken[0] if spoken else "0")))
    return result

"""Clustering voice prints of a whole recording: average-linkage merging and an eigengap count.

Both work on the cosine-similarity matrix of L2-normalised prints. Merging joins the two most alike
groups again and again until the best pair is less alike than a threshold (or a speaker-count bound
is reached); the eigengap of the similarity graph gives a second, threshold-free estimate of the
number of speakers. Everything is deterministic: ties go to the lowest index, no random start.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def cosine_similarities(prints: FloatArray) -> npt.NDArray[np.float64]:
    """(n, dim) L2-normalised prints -> (n, n) cosine similarities, in float64."""
    unit = prints.astype(np.float64)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    out: npt.NDArray[np.float64] = unit @ unit.T
    return out


def average_linkage(
    similarity: npt.NDArray[np.float64],
    *,
    stop_below: float,
    min_clusters: int = 1,
    max_clusters: int | None = None,
) -> IntArray:
    """Cluster labels 0..k-1 (numbered in order of first item) by average-linkage merging.

    Merging stops when the most alike pair of clusters is below ``stop_below``, but never leaves
    more than ``max_clusters`` nor fewer than ``min_clusters`` clusters.
    """
    n = similarity.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    linked = similarity.astype(np.float64, copy=True)
    np.fill_diagonal(linked, -np.inf)
    sizes = np.ones(n, np.float64)
    owner = np.arange(n)
    count = n
    while count > max(min_clusters, 1):
        flat = int(np.argmax(linked))
        i, j = divmod(flat, n)
        if i > j:
            i, j = j, i
        if linked[i, j] < stop_below and (max_clusters is None or count <= max_clusters):
            break
        merged = (sizes[i] * linked[i] + sizes[j] * linked[j]) / (sizes[i] + sizes[j])
        linked[i], linked[:, i] = merged, merged
        linked[j], linked[:, j] = -np.inf, -np.inf
        linked[i, i] = -np.inf
        sizes[i] += sizes[j]
        owner[owner == j] = i
        count -= 1
    return first_appearance_order(owner)


def first_appearance_order(labels: npt.NDArray[np.int64]) -> IntArray:
    """Relabel so that clusters are numbered 0, 1, ... in order of their first item."""
    mapping: dict[int, int] = {}
    out = np.empty(labels.size, np.int64)
    for index, label in enumerate(labels.tolist()):
        out[index] = mapping.setdefault(int(label), len(mapping))
    return out


def eigengap_count(similarity: npt.NDArray[np.float64], low: int, high: int, keep: float = 0.3) -> int:
    """Speaker count in [low, high] where the eigenvalues of the similarity graph drop most.

    Each print keeps links only to its ``keep`` fraction most alike prints (the rest of a noisy
    matrix blurs the groups); the graph's normalised Laplacian then has about as many near-zero
    eigenvalues as there are well-separated groups.
    """
    n = similarity.shape[0]
    high = min(high, n - 1)
    if high <= low or n < 3:
        return int(max(1, min(low, n)))
    affinity = np.clip(similarity, 0.0, None)
    np.fill_diagonal(affinity, 0.0)
    neighbours = max(2, int(np.ceil(keep * n)))
    cutoff = -np.sort(-affinity, axis=1)[:, neighbours - 1 : neighbours]
    pruned = np.where(affinity >= cutoff, affinity, 0.0)
    graph = 0.5 * (pruned + pruned.T)
    degree = np.maximum(graph.sum(axis=1), 1e-12)
    scale = 1.0 / np.sqrt(degree)
    laplacian = np.eye(n) - scale[:, None] * graph * scale[None, :]
    eigenvalues = np.linalg.eigvalsh(laplacian)  # ascending
    gaps = eigenvalues[low : high + 1] - eigenvalues[low - 1 : high]
    return low + int(np.argmax(gaps))

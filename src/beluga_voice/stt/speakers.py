"""Speaker labels that stay the same across reconnections and provider switches.

A new connection (or another provider) numbers speakers afresh: its "0" may be the stream's "1".
The timeline starts each new connection with a short sample of every known speaker; what the new
connection says there (and about any replayed audio already delivered) is a vote that its label
is that stream label. Labels are matched one to one, strongest evidence first, and fixed once a
word carrying them has been delivered, so a speaker never changes name in the middle of a stream.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable


class SpeakerMap:
    """Maps one connection's speaker labels onto the stream's labels.

    ``identity=True`` (the first connection) keeps labels as they are. Otherwise labels and stream
    labels are paired greedily by the weight of their votes (the strongest pair first, each label
    and stream label used once), so one voice's strong evidence is not taken by a label with weaker
    evidence for it. A label without evidence is a voice the connection's samples did not contain:
    it keeps its own name if no other label took it and it is not ``reserved`` (a sampled
    speaker, who has a label of their own on this connection), else the lowest free number.
    """

    def __init__(self, *, identity: bool, reserved: Iterable[str] = ()) -> None:
        self.identity = identity
        self.reserved = frozenset(reserved)
        self._votes: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._fixed: dict[str, str] = {}

    def observe(self, label: str, stream_label: str, weight: float) -> None:
        """Evidence: a word of ``label`` overlapped a delivered word of ``stream_label`` for ``weight`` s."""
        if not self.identity and label not in self._fixed and weight > 0:
            self._votes[label][stream_label] += weight

    def resolve(self, label: str) -> str:
        """The stream label for ``label``; fixed from the first call on."""
        if self.identity:
            return label
        fixed = self._fixed.get(label)
        if fixed is not None:
            return fixed
        choice = self._matched().get(label)
        if choice is None:
            unavailable = set(self._fixed.values()) | self.reserved
            choice = label if label not in unavailable else _lowest_free(unavailable)
        self._fixed[label] = choice
        return choice

    def _matched(self) -> dict[str, str]:
        """Labels not fixed yet paired with free stream labels, the heaviest vote first."""
        taken = set(self._fixed.values())
        pairs = sorted(
            (
                (-weight, label, stream)
                for label, votes in self._votes.items()
                if label not in self._fixed
                for stream, weight in votes.items()
                if stream not in taken
            ),
        )
        matched: dict[str, str] = {}
        for _, label, stream in pairs:
            if label not in matched and stream not in taken:
                matched[label] = stream
                taken.add(stream)
        return matched


def _lowest_free(taken: set[str]) -> str:
    number = 0
    while str(number) in taken:
        number += 1
    return str(number)

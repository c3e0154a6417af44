"""Speaker labels that stay the same across reconnections and provider switches.

A new connection (or another provider) numbers speakers afresh: its "0" may be the stream's "1".
The timeline replays a little audio that was already transcribed; the words the new connection
finds there overlap words already delivered, and each overlap is a vote that its label is the
delivered one. Labels are fixed once a word carrying them has been delivered, so a speaker never
changes name in the middle of a stream.
"""

from __future__ import annotations

from collections import defaultdict


class SpeakerMap:
    """Maps one connection's speaker labels onto the stream's labels.

    ``identity=True`` (the first connection) keeps labels as they are. Otherwise a label goes to the
    stream label it overlapped most in the replayed audio; a label without such evidence keeps its
    own name unless another label of this connection already took it, then gets the lowest free
    number.
    """

    def __init__(self, *, identity: bool) -> None:
        self.identity = identity
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
        taken = set(self._fixed.values())
        votes = {
            stream: weight for stream, weight in self._votes.get(label, {}).items() if stream not in taken
        }
        if votes:
            choice = max(sorted(votes), key=lambda stream: votes[stream])
        elif label not in taken:
            choice = label
        else:
            choice = _lowest_free(taken)
        self._fixed[label] = choice
        return choice


def _lowest_free(taken: set[str]) -> str:
    number = 0
    while str(number) in taken:
        number += 1
    return str(number)

"""The AWS provider's names for the project's one redactor (:mod:`beluga_voice.telemetry.redact`).

AWS echoes the canonical request (with the access key id and the session token) in signature
errors, and URLs carry the signature; neither may leave the process through our messages. Kept as a
module so the provider's imports read naturally; the patterns live in one place only.
"""

from __future__ import annotations

from beluga_voice.telemetry.redact import REDACTED, redact

__all__ = ["REDACTED", "redact", "redact_url"]


def redact_url(url: str) -> str:
    """A presigned URL safe to log: the query keeps its parameters, their secret values are masked."""
    return redact(url)

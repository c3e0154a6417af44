"""Scrub credentials out of any text that may reach a log, an error or a repr.

AWS echoes the canonical request (with the access key id and the session token) in signature
errors, and URLs carry the signature; neither may leave the process through our messages.
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"

_QUERY_SECRET = re.compile(
    r"(?i)(X-Amz-(?:Signature|Security-Token|Credential)|Signature|Credential|SessionToken)"
    r"(=|%3D|:\s*)([^&\s'\",]+)"
)
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b")
_LONG_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with signatures, tokens, key ids and the given secret values replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _ACCESS_KEY_ID.sub(REDACTED, text)
    return _LONG_SECRET.sub(REDACTED, text)


def redact_url(url: str) -> str:
    """A presigned URL safe to log: the query's secret values replaced."""
    return redact(url)

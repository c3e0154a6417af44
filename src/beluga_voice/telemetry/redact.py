"""Scrub AWS secrets out of any text before it reaches a log, a span or a terminal.

A presigned URL, an ``Authorization`` header, a credentials repr or a config dump can end up in an
error message; this is the last line of defence, so it errs on the side of hiding too much. It is the
project's only redactor: the AWS provider (``providers.aws_transcribe.redaction``), the log filter,
spans and ``beluga doctor`` all call :func:`redact`.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"

# ``name=value`` pairs of SigV4 query strings and Authorization headers (``=`` is percent-encoded
# when a presigned URL is itself quoted inside another URL or form field).
_SIGNED_PARAM = re.compile(
    r"(?i)(?:\b|(?<=%[0-9A-F]{2}))(X-Amz-Signature|X-Amz-Security-Token|X-Amz-Credential|Signature|Credential)"
    r"(=|%3D)((?:(?!%26)[^&\s,;\"'])+)"
)
# ``key: value`` / ``key=value`` / ``"key": "value"`` in configs, dicts, reprs and JSON.
_SECRET_FIELD = re.compile(
    r"(?i)(\b(?:aws_)?secret_(?:access_)?key|\bsecretaccesskey|\b(?:aws_)?session_?token|\bsecurity[-_]token"
    r"|\bx-amz-security-token|\bpassword|\btoken|\bsignature|:chunk-signature)"
    r"([\"']?\s*[:=]\s*(?:b?[\"']|(?!None\b|null\b)))([^\s\"',;&}]+)"
)
# Access key ids keep their four-letter prefix (AKIA long-term, ASIA temporary): useful, not secret.
# Usually 20 characters; AWS allows longer ones.
_ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{12,}\b")
# Session tokens: long base64 runs, raw or percent-encoded.
_LONG_BLOB = re.compile(r"(?:[A-Za-z0-9+/]|%2[BbFf]){100,}(?:=|%3[Dd]){0,2}")
# Secret access keys: 40 base64 characters mixing cases (hex digests never mix cases).
_FORTY = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])")
# SigV4 signatures: 64 lowercase hex digits.
_HEX64 = re.compile(r"(?<![0-9A-Fa-f])[0-9a-f]{64}(?![0-9A-Fa-f])")


def _forty(match: re.Match[str]) -> str:
    text = match.group(0)
    has_lower = any(c.islower() for c in text)
    has_upper = any(c.isupper() for c in text)
    return REDACTED if has_lower and has_upper else text


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every access key id, secret key, session token and signature masked.

    ``secrets`` are known values (the credentials in use) to mask wherever they appear, whatever
    their shape: the patterns below catch the usual shapes, the known values catch the rest.
    """
    if not text:
        return text
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _SIGNED_PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _SECRET_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _ACCESS_KEY_ID.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _LONG_BLOB.sub(REDACTED, text)
    text = _FORTY.sub(_forty, text)
    return _HEX64.sub(REDACTED, text)

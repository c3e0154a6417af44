"""Which regions have a Transcribe Streaming endpoint, and its host name, from botocore's data.

Read at run time from botocore's ``endpoints.json`` (service ``transcribestreaming``), so a botocore
upgrade adds regions without a release of ours. Checked before any connection is attempted.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from typing import Any

import botocore.loaders
import botocore.regions

from beluga_voice.errors import UnsupportedRegionError

SERVICE = "transcribestreaming"
PORT = 8443
PATH = "/stream-transcription-websocket"


@dataclass(frozen=True)
class Endpoint:
    """Where to connect (host, port, path) and which region signs for it."""

    host: str
    signing_region: str
    port: int = PORT
    path: str = PATH
    scheme: str = "wss"

    @property
    def url(self) -> str:
        default = (self.scheme == "wss" and self.port == 443) or (self.scheme == "ws" and self.port == 80)
        netloc = self.host if default else f"{self.host}:{self.port}"
        return f"{self.scheme}://{netloc}{self.path}"


@functools.lru_cache(maxsize=1)
def _endpoint_data() -> tuple[botocore.regions.EndpointResolver, dict[str, Any]]:
    data: dict[str, Any] = botocore.loaders.create_loader().load_data("endpoints")
    listed: dict[str, Any] = {}
    for partition in data["partitions"]:
        service = partition["services"].get(SERVICE) or {}
        for region, entry in service.get("endpoints", {}).items():
            if not entry.get("deprecated"):  # old "fips-<region>" pseudo regions: use fips=True
                listed[region] = entry
    return botocore.regions.EndpointResolver(data), listed


def streaming_regions() -> list[str]:
    """Every region with a Transcribe Streaming endpoint, sorted."""
    return sorted(_endpoint_data()[1])


def fips_regions() -> list[str]:
    """Regions with a FIPS streaming endpoint, sorted."""
    return sorted(r for r, entry in _endpoint_data()[1].items() if _has_fips(entry))


def resolve_endpoint(region: str, *, fips: bool = False) -> Endpoint:
    """The streaming endpoint of ``region``, or :class:`UnsupportedRegionError` listing the valid ones.

    botocore would build a host name for any region; only regions its data lists have the service.
    """
    resolver, listed = _endpoint_data()
    entry = listed.get(region)
    if entry is None:
        same_area = [r for r in listed if r.split("-")[0] == region.split("-")[0]]
        near = difflib.get_close_matches(region, same_area, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise UnsupportedRegionError(
            f"region {region!r} has no Amazon Transcribe Streaming endpoint.{hint} "
            f"Regions with one: {', '.join(streaming_regions())}. "
            "Pass region=... (or set AWS_REGION) to one of them."
        )
    if fips and not _has_fips(entry):
        raise UnsupportedRegionError(
            f"region {region!r} has no FIPS Transcribe Streaming endpoint. "
            f"FIPS regions: {', '.join(fips_regions())}. Use one of them, or fips=False."
        )
    resolved = resolver.construct_endpoint(SERVICE, region, use_fips_endpoint=fips)
    if not resolved or not resolved.get("hostname"):
        raise UnsupportedRegionError(f"botocore has no host name for {SERVICE} in {region!r}")
    signing_region = resolved.get("credentialScope", {}).get("region", region)
    return Endpoint(str(resolved["hostname"]), str(signing_region))


def _has_fips(entry: dict[str, Any]) -> bool:
    return any(v.get("tags") == ["fips"] for v in entry.get("variants", []))

"""Downloading the media a send-image/send-file request points at (bounded, http(s) only).

Only bytes ever reach the connector: neonize reads a *local file* when given a string
that is not a URL, and an API caller must never be able to send the runner's files.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from ecosystem import __version__
from runner.connectors.base import UpstreamError

MEDIA_MAX_BYTES = 64 * 1024 * 1024
TIMEOUT = 30.0


def fetch(url: str, limit: int = MEDIA_MAX_BYTES, timeout: float = TIMEOUT) -> tuple[bytes, str]:
    """(content, content type); UpstreamError with the reason when it cannot."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise UpstreamError(f"{url!r} is not an http(s) URL")
    req = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, headers={"User-Agent": f"zapvisor/{__version__}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme checked
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise UpstreamError(f"{url} is {int(length)} bytes; at most {limit}")
            data = resp.read(limit + 1)
            if len(data) > limit:
                raise UpstreamError(f"{url} is over {limit} bytes")
            return data, resp.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        raise UpstreamError(f"downloading {url} failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UpstreamError(f"downloading {url} failed: {reason}") from None

"""Downloading the media a send-image/send-file request points at (bounded, http(s) only).

Only bytes ever reach the connector: neonize reads a *local file* when given a string
that is not a URL, and an API caller must never be able to send the runner's files.

Nor may a caller make the runner a proxy into the host or its network: unless
``ZAPVISOR_MEDIA_ALLOW_PRIVATE`` is on, every address a media host resolves to must be
public (no loopback, private, link-local — e.g. 169.254.169.254, a cloud's metadata
service — CGNAT, multicast or reserved). The check runs where the socket is opened (an
httpcore network backend under httpx), on the address actually connected to, for the
first URL and every redirect, so neither a DNS answer that changes between check and
use nor a redirect gets around it.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ecosystem import __version__
from ecosystem.errors import InvalidValue
from runner.connectors.base import UpstreamError

if TYPE_CHECKING:
    import httpx

MEDIA_MAX_BYTES = 64 * 1024 * 1024
TIMEOUT = 30.0
MAX_REDIRECTS = 5
SETTING = "ZAPVISOR_MEDIA_ALLOW_PRIVATE"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Allowed = Callable[[Address], bool]


def is_public(ip: Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    return ip.is_global and not ip.is_multicast


def _everything(_: Address) -> bool:
    return True


def policy(allow_private: bool) -> Allowed:
    return _everything if allow_private else is_public


class MediaRefused(OSError):
    """The media host is on an address the runner may not reach."""


def check_url(url: str, allow_private: bool) -> None:
    """Refuse at once a URL whose host is written as a non-public address (or
    `localhost`): the answer is a 400, no connection is tried. Names are checked when
    they are resolved, in ``fetch``."""
    if allow_private:
        return
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise InvalidValue(_refusal(url, host))
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return
    if not is_public(ip):
        raise InvalidValue(_refusal(url, str(ip)))


def _refusal(url: str, address: str) -> str:
    return (
        f"media URL {url} points at {address}, a loopback/private/link-local address; "
        f"set {SETTING}=true to allow such hosts"
    )


def _addresses(host: str, port: int) -> Iterable[Address]:
    for *_, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        yield ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])


@functools.lru_cache(maxsize=4)  # one per policy: two in a runner
def _client(allowed: Allowed) -> httpx.Client:
    """One pooled client per address policy, made on the first fetch (httpx and its TLS
    context cost memory a runner that never sends media need not pay): http(s) only,
    every connection guarded, at most MAX_REDIRECTS, no proxy or netrc from the
    environment."""
    import httpcore
    import httpx

    class GuardedBackend(httpcore.SyncBackend):
        """Connects only to the addresses ``allowed`` accepts, each tried in turn."""

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.NetworkStream:
            refused: list[str] = []
            error: Exception | None = None
            try:
                addresses = list(_addresses(host, port))
            except OSError as exc:
                raise httpcore.ConnectError(f"{host}: {exc}") from None
            for ip in addresses:
                if not allowed(ip):
                    refused.append(str(ip))
                    continue
                try:  # TLS still checks the certificate against the URL's host name
                    return super().connect_tcp(
                        str(ip), port, timeout, local_address, socket_options
                    )
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    error = exc
            if error is not None:
                raise error
            raise MediaRefused(f"{host} resolves to {', '.join(refused) or 'no address'}")

    class GuardedTransport(httpx.HTTPTransport):
        def __init__(self) -> None:
            super().__init__(trust_env=False)
            # httpx takes no network backend; its pool is httpcore's, which does.
            self._pool = httpcore.ConnectionPool(
                ssl_context=httpx.create_ssl_context(trust_env=False),
                network_backend=GuardedBackend(),
            )

    return httpx.Client(
        transport=GuardedTransport(),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
        timeout=TIMEOUT,
        headers={"User-Agent": f"zapvisor/{__version__}"},
    )


def fetch(
    url: str,
    *,
    allow_private: bool = False,
    allowed: Allowed | None = None,
    limit: int = MEDIA_MAX_BYTES,
    timeout: float = TIMEOUT,
) -> tuple[bytes, str]:
    """(content, content type or "" when the server sent none); InvalidValue when the
    host is refused, UpstreamError with the reason when the download fails."""
    import httpx

    if urlsplit(url).scheme not in ("http", "https"):
        raise UpstreamError(f"{url!r} is not an http(s) URL")
    check_url(url, allow_private or allowed is not None)
    try:
        with _client(allowed or policy(allow_private)).stream("GET", url, timeout=timeout) as resp:
            if resp.status_code >= 400:
                raise UpstreamError(f"downloading {url} failed: HTTP {resp.status_code}")
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise UpstreamError(f"{url} is {int(length)} bytes; at most {limit}")
            data = bytearray()
            for chunk in resp.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise UpstreamError(f"{url} is over {limit} bytes")
            # "" when the server sent none: the sender decides (not text/plain)
            kind = resp.headers.get("Content-Type") or ""
            return bytes(data), kind.split(";", 1)[0].strip().lower()
    except MediaRefused as exc:
        raise InvalidValue(
            f"media URL {url} refused: {exc}, not a public address; "
            f"set {SETTING}=true to allow such hosts"
        ) from None
    except httpx.TooManyRedirects:
        raise UpstreamError(f"downloading {url} failed: over {MAX_REDIRECTS} redirects") from None
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
        raise UpstreamError(f"downloading {url} failed: {exc or type(exc).__name__}") from None

"""Downloading the media a send-image/send-file request points at (bounded, http(s) only).

Only bytes ever reach the connector: neonize reads a *local file* when given a string
that is not a URL, and an API caller must never be able to send the runner's files.

Nor may a caller make the runner a proxy into the host or its network: unless
``ZAPVISOR_MEDIA_ALLOW_PRIVATE`` is on, every address a media host resolves to must be
public (no loopback, private, link-local — e.g. 169.254.169.254, a cloud's metadata
service — CGNAT, multicast or reserved). The check runs where the socket is opened,
on the address actually connected to, for the first URL and every redirect, so neither
a DNS answer that changes between check and use nor a redirect gets around it.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ecosystem import __version__
from ecosystem.errors import InvalidValue
from runner.connectors.base import UpstreamError

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


def _connect(
    address: tuple[str, int],
    timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: Any = None,
    *,
    allowed: Allowed,
) -> socket.socket:
    """socket.create_connection, skipping every address ``allowed`` refuses."""
    host, port = address
    refused: list[str] = []
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not allowed(ip):
            refused.append(str(ip))
            continue
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    if error is not None:
        raise error
    raise MediaRefused(f"{host} resolves to {', '.join(refused) or 'no address'}")


class _GuardedHTTP(http.client.HTTPConnection):
    def __init__(self, *args: Any, allowed: Allowed, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = lambda *a: _connect(*a, allowed=allowed)


class _GuardedHTTPS(http.client.HTTPSConnection):
    def __init__(self, *args: Any, allowed: Allowed, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = lambda *a: _connect(*a, allowed=allowed)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, allowed: Allowed) -> None:
        super().__init__()
        self.allowed = allowed

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedHTTP, req, allowed=self.allowed)  # type: ignore[arg-type]


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, allowed: Allowed) -> None:
        super().__init__()
        self.allowed = allowed

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        context = getattr(self, "_context", None)  # None: the default, verifying one
        return self.do_open(_GuardedHTTPS, req, context=context, allowed=self.allowed)  # type: ignore[arg-type]


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS


def _opener(allowed: Allowed) -> urllib.request.OpenerDirector:
    """http(s) only, every connection guarded, no proxy from the environment, and no
    ftp/file/data handlers a redirect could reach."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.UnknownHandler(),
        _HTTPHandler(allowed),
        _HTTPSHandler(allowed),
        urllib.request.HTTPDefaultErrorHandler(),
        _Redirects(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


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
    if urlsplit(url).scheme not in ("http", "https"):
        raise UpstreamError(f"{url!r} is not an http(s) URL")
    check_url(url, allow_private or allowed is not None)
    req = urllib.request.Request(  # noqa: S310 - scheme checked above, opener is http(s) only
        url, headers={"User-Agent": f"zapvisor/{__version__}"}
    )
    try:
        with _opener(allowed or policy(allow_private)).open(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise UpstreamError(f"{url} is {int(length)} bytes; at most {limit}")
            data = resp.read(limit + 1)
            if len(data) > limit:
                raise UpstreamError(f"{url} is over {limit} bytes")
            # "" when the server sent none (get_content_type() would say text/plain)
            declared = resp.headers.get("Content-Type") is not None
            return data, resp.headers.get_content_type() if declared else ""
    except urllib.error.HTTPError as exc:
        raise UpstreamError(f"downloading {url} failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, MediaRefused):
            raise InvalidValue(
                f"media URL {url} refused: {reason}, not a public address; "
                f"set {SETTING}=true to allow such hosts"
            ) from None
        raise UpstreamError(f"downloading {url} failed: {reason}") from None

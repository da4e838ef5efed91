"""Hide what a URL carries for authentication before it is printed or recorded.

Webhook receivers are often protected by credentials in the URL itself (`user:pass@`,
`?token=`). The store keeps the URL whole, since the runner needs it, but `show`, the
JSON views and the audit trail get this version, so a pasted `zapvisor show` or an
events export never leaks the receiver's secret.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HIDDEN = "***"
SECRET_WORDS = ("token", "key", "secret", "pass", "auth", "sig", "credential")


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def redact_url(url: str | None) -> str | None:
    """``url`` with its password and secret-looking query values replaced by ***."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{HIDDEN}@{host}" if ":" in userinfo else f"{HIDDEN}@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(_secret_name(k) for k, _ in pairs):
                query = urlencode(
                    [(k, HIDDEN if _secret_name(k) else v) for k, v in pairs], safe="*"
                )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        # Unparseable: show the scheme and host part only, never the rest.
        return url.split("?", 1)[0].split("@")[-1] + " (unparseable)"

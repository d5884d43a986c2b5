"""Query signatures Shopify puts on requests it sends through the merchant's browser.

- OAuth (install URL and callback): `hmac` = hex HMAC-SHA256 (client secret) of the other
  parameters, sorted, as `k=v` joined by `&`.
- App Proxy: `signature` = hex HMAC-SHA256 (client secret) of the other parameters, sorted, as
  `k=v` concatenated with no separator, a parameter given several times joined by `,`.

Both are checked in constant time against each secret the app accepts (the previous one too,
while the client secret is rotated).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from app.core.errors import ProblemError


class InvalidSignature(ProblemError):
    status, code, title = 401, "invalid_signature", "The request's signature does not verify"


# An App Proxy request signed longer ago (or further ahead) than this is refused as stale.
PROXY_MAX_SKEW_S = 300


def _hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _grouped(params: Iterable[tuple[str, str]], without: str) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in params:
        if key != without:
            grouped.setdefault(key, []).append(value)
    return grouped


def oauth_message(params: Iterable[tuple[str, str]]) -> str:
    grouped = _grouped(params, "hmac")
    grouped.pop("signature", None)
    return "&".join(f"{k}={','.join(v)}" for k, v in sorted(grouped.items()))


def proxy_message(params: Iterable[tuple[str, str]]) -> str:
    grouped = _grouped(params, "signature")
    return "".join(f"{k}={','.join(v)}" for k, v in sorted(grouped.items()))


def sign_oauth(params: Iterable[tuple[str, str]], secret: str) -> str:
    return _hex(secret, oauth_message(params))


def sign_proxy(params: Iterable[tuple[str, str]], secret: str) -> str:
    return _hex(secret, proxy_message(params))


def _matches(given: str | None, expected: Iterable[str]) -> bool:
    if not given:
        return False
    given_bytes = given.strip().lower().encode()
    # Every secret is tried, so the time taken does not say which one matched.
    results = [hmac.compare_digest(given_bytes, e.encode()) for e in expected]
    return any(results)


def verify_oauth(params: Sequence[tuple[str, str]], secrets: Sequence[str]) -> bool:
    given = next((v for k, v in params if k == "hmac"), None)
    message = oauth_message(params)
    return _matches(given, (_hex(s, message) for s in secrets))


def verify_proxy(params: Sequence[tuple[str, str]], secrets: Sequence[str]) -> bool:
    given = next((v for k, v in params if k == "signature"), None)
    message = proxy_message(params)
    return _matches(given, (_hex(s, message) for s in secrets))


def fresh(timestamp: str | None, *, max_skew_s: int, now: datetime | None = None) -> bool:
    """`timestamp` (Unix seconds) is within `max_skew_s` of now."""
    try:
        signed_at = int(timestamp or "")
    except ValueError:
        return False
    current = (now or datetime.now(UTC)).timestamp()
    return abs(current - signed_at) <= max_skew_s

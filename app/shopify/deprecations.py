"""Admin API answers that say the call is deprecated (`X-Shopify-API-Deprecated-Reason`):
counted in /metrics (`cashback_shopify_deprecated_calls`) and logged once per shop and call
in each process, so a version about to go away is noticed before it does."""

from __future__ import annotations

import logging
import re
from typing import Protocol

import httpx
from prometheus_client import Counter

logger = logging.getLogger(__name__)

HEADER = "X-Shopify-API-Deprecated-Reason"
_OPERATION = re.compile(r"^\s*(?:query|mutation)\s+(\w+)")
# Made once per process and registered in each registry (API and worker, see
# app.observability.metrics): the Admin API client that counts it knows no registry.
SHOPIFY_DEPRECATED_CALLS = Counter(
    "cashback_shopify_deprecated_calls",
    "Admin API answers carrying X-Shopify-API-Deprecated-Reason, by API version and call.",
    ["version", "call"],
    registry=None,
)
_logged: set[tuple[str, str]] = set()  # (shop's Admin origin, call) already logged here


class _Api(Protocol):
    @property
    def base_url(self) -> str: ...
    @property
    def version(self) -> str: ...


def operation_name(query: str) -> str:
    found = _OPERATION.match(query)
    return found.group(1) if found else "anonymous"


def note(api: _Api, query: str, response: httpx.Response) -> None:
    reason = response.headers.get(HEADER)
    if reason is None:
        return
    call = operation_name(query)
    SHOPIFY_DEPRECATED_CALLS.labels(api.version, call).inc()
    if (api.base_url, call) not in _logged:
        _logged.add((api.base_url, call))
        logger.warning(
            "Shopify says %s (API %s) on %s is deprecated: %s",
            call,
            api.version,
            api.base_url,
            reason[:500],
        )

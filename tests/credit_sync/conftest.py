"""Platform tests: a short client timeout, no settle wait, and the Shopify stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.config import Settings
from app.credit_sync import service
from tests.shopify.admin_standin import FakeShopify, running

# Short, so a late answer times out quickly; the stand-in answers late after 1.5 s.
HTTP_TIMEOUT_S = 0.5


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"http_timeout_s": HTTP_TIMEOUT_S})


@pytest.fixture(autouse=True)
def quick_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    # An unclear attempt is checked 2 x HTTP_TIMEOUT_S after it, not 30 s.
    monkeypatch.setattr(service, "MIN_SETTLE_S", 0.0)


@pytest.fixture
async def shopify() -> AsyncIterator[FakeShopify]:
    async with running(FakeShopify()) as standin:
        yield standin
    assert standin.invalid_queries == [], "a query the Admin API would refuse"

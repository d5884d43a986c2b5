from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.notifications.receiver import Receiver, running_receiver
from tests.shopify.admin_standin import FakeShopify, running


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running_one:
        yield running_one


@pytest.fixture
async def shopify() -> AsyncIterator[FakeShopify]:
    async with running(FakeShopify()) as standin:
        yield standin
    assert standin.invalid_queries == [], "a query the Admin API would refuse"

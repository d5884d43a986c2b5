"""Shopify app tests: the service configured as an app, against the Shopify stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from app.config import Settings
from tests.shopify.admin_standin import running
from tests.shopify.helpers import CLIENT_ID, CLIENT_SECRET, PUBLIC_URL
from tests.shopify.standin import ShopifyStandin


@pytest.fixture
async def shopify() -> AsyncIterator[ShopifyStandin]:
    async with running(ShopifyStandin(CLIENT_ID, CLIENT_SECRET)) as standin:
        yield standin


@pytest.fixture
def settings(settings: Settings, shopify: ShopifyStandin) -> Settings:
    return settings.model_copy(
        update={
            "shopify_client_id": CLIENT_ID,
            "shopify_client_secret": SecretStr(CLIENT_SECRET),
            "public_url": PUBLIC_URL,
            "shopify_admin_url": f"{shopify.url}/shops/{{shop}}",
            "http_timeout_s": 2.0,
        }
    )

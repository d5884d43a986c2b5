"""What the app declares to Shopify matches what the code does; settings refuse half an app;
deprecated Admin API calls are counted and logged once."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from app.config import Environment, Settings
from app.main import create_app
from app.shopify import admin as shopify_admin
from app.shopify.app_config import COMPLIANCE_TOPICS, SCOPES, WEBHOOK_TOPICS
from app.shopify.deprecations import SHOPIFY_DEPRECATED_CALLS
from app.shopify.topics import TOPICS
from tests.shopify.standin import ShopifyStandin
from tests.support import ADMIN_TOKEN, Stack

ROOT = Path(__file__).parents[2]
PUBLIC = "https://cashback.example.com"


def test_shopify_app_toml_declares_what_the_code_needs_and_handles() -> None:
    app = tomllib.loads((ROOT / "shopify.app.toml").read_text())
    assert app["embedded"] is True and app["application_url"] == f"{PUBLIC}/shopify/install"
    assert app["access_scopes"]["scopes"].split(",") == list(SCOPES)
    assert app["auth"]["redirect_urls"] == [f"{PUBLIC}/shopify/callback"]
    assert app["webhooks"]["api_version"] == Settings.model_fields["shopify_api_version"].default
    topics, compliance = app["webhooks"]["subscriptions"]
    assert topics["topics"] == list(WEBHOOK_TOPICS)
    # Every topic the app subscribes to has its handler, and every handler its subscription.
    assert set(WEBHOOK_TOPICS) | set(COMPLIANCE_TOPICS) == set(TOPICS)
    assert set(compliance["compliance_topics"]) == set(COMPLIANCE_TOPICS)
    assert topics["uri"] == compliance["uri"] == f"{PUBLIC}/webhooks/shopify"
    assert app["app_proxy"] == {
        "url": f"{PUBLIC}/shopify/proxy",
        "subpath": "cashback",
        "prefix": "apps",
    }


def production(**values: object) -> Settings:
    base: dict[str, object] = {
        "env": Environment.production,
        "admin_token": SecretStr("a-real-admin-token"),
        "secret_key": SecretStr("a-real-secret-key"),
    }
    return Settings(**(base | values))  # type: ignore[arg-type]


def test_production_refuses_half_an_app_and_starts_with_all_or_none() -> None:
    production()  # no app: hand-made shops only
    whole = production(
        shopify_client_id="id", shopify_client_secret=SecretStr("s"), public_url=f"{PUBLIC}/"
    )
    assert whole.public_url == PUBLIC
    for half in (
        {"shopify_client_id": "id"},
        {"shopify_client_id": "id", "shopify_client_secret": SecretStr("s")},
        {"public_url": PUBLIC},
        {"shopify_previous_client_secret": SecretStr("old")},
    ):
        with pytest.raises(ValidationError, match="half configured"):
            production(**half)
    with pytest.raises(ValidationError, match="https"):
        production(
            shopify_client_id="id", shopify_client_secret=SecretStr("s"), public_url="http://x"
        )


async def test_deprecated_admin_calls_are_counted_and_logged_once_per_shop_and_call(
    stack: Stack, shopify: ShopifyStandin, caplog: pytest.LogCaptureFixture
) -> None:
    shopify.deprecated_reason = "https://shopify.dev/changelog/store-credit-input-changes"
    api = shopify_admin.AdminApi(shopify.url, "2026-10", "shpat_test")
    counter = SHOPIFY_DEPRECATED_CALLS.labels("2026-10", "StoreCreditCredit")
    before = counter._value.get()
    with caplog.at_level(logging.WARNING, logger="app.shopify.deprecations"):
        for _ in range(2):
            outcome = await shopify_admin.credit(
                stack.resources.http,
                api,
                "gid://shopify/Customer/1",
                100,
                "USD",
                notify=True,
                note=None,
            )
            assert isinstance(outcome, shopify_admin.Applied)
    assert counter._value.get() == before + 2
    assert [r.getMessage() for r in caplog.records].count(
        f"Shopify says StoreCreditCredit (API 2026-10) on {shopify.url} is deprecated: "
        f"{shopify.deprecated_reason}"
    ) == 1
    app = create_app(stack.settings, stack.resources)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert (
        'cashback_shopify_deprecated_calls_total{call="StoreCreditCredit",version="2026-10"}'
        in (metrics.text)
    )

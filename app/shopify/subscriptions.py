"""What the app reads and sets up in a shop's Admin GraphQL API at install: the shop's currency
and timezone, and the webhook subscriptions.

Subscriptions declared in shopify.app.toml are Shopify's to deliver; on install the service also
lists the shop's subscriptions and creates any topic it handles that has none pointing at
`{public}/webhooks/shopify` (`webhookSubscriptionCreate`), so a TOML that was never deployed
does not silently lose events. Reconciliation reports a topic still missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from app.shopify.admin import AdminApi, AdminApiError, _query
from app.shopify.app_config import WEBHOOK_TOPICS

PAGE = 100  # as asked for in SUBSCRIPTIONS_QUERY
MAX_PAGES = 10

SHOP_QUERY = """
query ShopBasics {
  shop { currencyCode ianaTimezone }
}
"""

SUBSCRIPTIONS_QUERY = """
query WebhookSubscriptions($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id topic uri }
  }
}
"""

CREATE_SUBSCRIPTION = """
mutation WebhookSubscriptionCreate(
  $topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!
) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}
"""


@dataclass(frozen=True, slots=True)
class ShopBasics:
    currency: str
    timezone: str


def topic_enum(topic: str) -> str:
    """`orders/paid` → `ORDERS_PAID`, as GraphQL's WebhookSubscriptionTopic names it."""
    return topic.replace("/", "_").upper()


async def shop_basics(http: httpx.AsyncClient, api: AdminApi) -> ShopBasics:
    data = await _query(http, api, SHOP_QUERY, {})
    shop = data["shop"]
    return ShopBasics(currency=str(shop["currencyCode"]), timezone=str(shop["ianaTimezone"]))


async def subscribed_topics(http: httpx.AsyncClient, api: AdminApi, uri: str) -> set[str]:
    """The topics (enum names) the shop delivers to `uri`."""
    topics: set[str] = set()
    after: str | None = None
    for _ in range(MAX_PAGES):
        data = await _query(http, api, SUBSCRIPTIONS_QUERY, {"after": after})
        page: dict[str, Any] = data["webhookSubscriptions"]
        topics |= {str(n["topic"]) for n in page["nodes"] if n.get("uri") == uri}
        if not page["pageInfo"]["hasNextPage"]:
            return topics
        after = page["pageInfo"]["endCursor"]
    raise AdminApiError(f"more than {PAGE * MAX_PAGES} webhook subscriptions")


async def missing_topics(http: httpx.AsyncClient, api: AdminApi, uri: str) -> list[str]:
    """Topics the service handles that the shop does not deliver to `uri`."""
    subscribed = await subscribed_topics(http, api, uri)
    return [t for t in WEBHOOK_TOPICS if topic_enum(t) not in subscribed]


async def ensure_subscriptions(http: httpx.AsyncClient, api: AdminApi, uri: str) -> list[str]:
    """Create a subscription to `uri` for each missing topic; returns the topics created."""
    created = []
    for topic in await missing_topics(http, api, uri):
        variables = {
            "topic": topic_enum(topic),
            "webhookSubscription": {"uri": uri, "format": "JSON"},
        }
        data = await _query(http, api, CREATE_SUBSCRIPTION, variables)
        errors = data["webhookSubscriptionCreate"]["userErrors"]
        if errors:
            message = "; ".join(str(e.get("message")) for e in errors)
            raise AdminApiError(f"webhookSubscriptionCreate {topic}: {message}")
        created.append(topic)
    return created

"""The app as Shopify knows it: client id and secrets, where the service and the shops live,
the scopes it asks for and the webhook topics it subscribes to."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.config import Settings
from app.core.errors import ProblemError

# Nothing leaves the service for a shop name that does not match this.
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")

# What the code needs, as declared in shopify.app.toml (a test keeps the two equal).
SCOPES = (
    "read_orders",
    "read_customers",
    "read_products",
    "read_store_credit_accounts",
    "read_store_credit_account_transactions",
    "write_store_credit_account_transactions",
)
# Topics handled by app.inbox.service, subscribed on install; the compliance topics
# (customers/data_request, customers/redact, shop/redact) can only be declared in the TOML.
WEBHOOK_TOPICS = (
    "orders/create",
    "orders/paid",
    "orders/updated",
    "orders/cancelled",
    "refunds/create",
    "customers/create",
    "customers/update",
    "products/create",
    "products/update",
    "app/uninstalled",
    "app/scopes_update",
)
COMPLIANCE_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")
WEBHOOK_PATH = "/webhooks/shopify"
CALLBACK_PATH = "/shopify/callback"


class AppNotConfigured(ProblemError):
    status, code, title = 503, "shopify_app_not_configured", "The Shopify app is not configured"


class InvalidShopDomain(ProblemError):
    status, code, title = 400, "invalid_shop_domain", "Not a myshopify.com shop name"


@dataclass(frozen=True, slots=True)
class ShopifyApp:
    client_id: str
    # The current secret first; the previous one is still accepted while it is rotated.
    secrets: tuple[str, ...]
    public_url: str
    admin_url_template: str
    api_version: str

    @property
    def client_secret(self) -> str:
        return self.secrets[0]

    @property
    def redirect_uri(self) -> str:
        return self.public_url + CALLBACK_PATH

    @property
    def webhook_uri(self) -> str:
        return self.public_url + WEBHOOK_PATH

    def admin_origin(self, shop: str) -> str:
        """Where `shop`'s Admin lives; only ever for a name that passed `shop_domain`."""
        return self.admin_url_template.format(shop=shop_domain(shop)).rstrip("/")

    def home_url(self, shop: str) -> str:
        """The app's page inside the shop's admin."""
        return f"{self.admin_origin(shop)}/admin/apps/{self.client_id}"


def app_of(settings: Settings) -> ShopifyApp | None:
    if not (settings.shopify_client_id and settings.shopify_client_secret and settings.public_url):
        return None
    secrets = [settings.shopify_client_secret.get_secret_value()]
    if settings.shopify_previous_client_secret is not None:
        secrets.append(settings.shopify_previous_client_secret.get_secret_value())
    return ShopifyApp(
        client_id=settings.shopify_client_id,
        secrets=tuple(secrets),
        public_url=settings.public_url,
        admin_url_template=settings.shopify_admin_url,
        api_version=settings.shopify_api_version,
    )


def require_app(settings: Settings) -> ShopifyApp:
    app = app_of(settings)
    if app is None:
        raise AppNotConfigured(
            "set CASHBACK_SHOPIFY_CLIENT_ID, CASHBACK_SHOPIFY_CLIENT_SECRET and CASHBACK_PUBLIC_URL"
        )
    return app


def shop_domain(value: str | None) -> str:
    """`value` as a myshopify.com shop name, or InvalidShopDomain."""
    name = (value or "").strip().lower()
    if not SHOP_DOMAIN.match(name):
        raise InvalidShopDomain(f"{value!r} is not a *.myshopify.com shop name")
    return name

"""The Shopify app: install (OAuth), expiring offline tokens, session tokens, the App Proxy.

The webhook adapter (signatures on deliveries, payload parsing) is app.webhooks.shopify and the
Admin GraphQL client is app.platform.shopify_admin; this package builds on both.
"""

"""The Shopify app: install (OAuth), expiring offline tokens, session tokens, the App Proxy.

The webhook adapter (signatures on deliveries, payload parsing) is app.shopify.payloads and the
Admin GraphQL client is app.shopify.admin; this package builds on both.
"""

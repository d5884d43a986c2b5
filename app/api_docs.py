"""What the OpenAPI document says beyond the routes: tags, examples, headers, shared errors.

Routes declare their own summary, description and problems; this module adds what reads better in
one place: the tags in the frontend's order, one worked example per operation (request and 2xx
response; tests validate each against its schema), and the 503 every database-backed call may
answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# One worked example per operation, from a real run of the service (see its `_about`).
_EXAMPLES = json.loads((Path(__file__).with_name("api_examples.json")).read_text())
PARAMETER_EXAMPLES: dict[str, Any] = _EXAMPLES["parameters"]
EXAMPLES: dict[str, dict[str, Any]] = _EXAMPLES["operations"]
TEXT_EXAMPLES: dict[str, dict[str, str]] = _EXAMPLES["text"]

# Header names are case-insensitive: `If-Match` and `if-match` get the same example.
EXAMPLE_BY_PARAMETER = {name.lower(): value for name, value in PARAMETER_EXAMPLES.items()}

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

# The frontend's screens, in its menu's order.
TAGS: list[dict[str, Any]] = [
    {"name": "Orders", "description": "The orders list and an order's page: filters, counts."},
    {
        "name": "Review",
        "description": "The review queue's actions: approve, reject, hold, release, process, "
        "in bulk too. Reviewer and admin keys; `If-Match` guards against stale screens.",
    },
    {"name": "Customers", "description": "A customer's store-credit balance and ledger."},
    {"name": "Dashboard", "description": "Today's figures, daily charts and top customers."},
    {
        "name": "Program",
        "description": "The cashback program (rates, rules, tiers, campaigns), its preview and "
        "simulation, and the catalog its rules match on.",
    },
    {
        "name": "Settings",
        "description": "The shop's settings, background operations and API keys (admin keys).",
    },
    {"name": "Audit", "description": "Who did what, when and why; CSV export."},
    {"name": "Events", "description": "Server-sent events for live badges and figures."},
    {"name": "Webhooks", "description": "Shopify webhook intake (signed by Shopify, no API key)."},
    {"name": "Operator", "description": "Shop provisioning with the operator token."},
    {"name": "Health", "description": "Liveness and readiness probes."},
]

UNAVAILABLE = {
    "description": "The database or Redis is unreachable; retry after `Retry-After` seconds.",
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer"},
        }
    },
    "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}},
}

# Shopify's headers on every webhook; the route reads them raw (the signature covers the body).
WEBHOOK_HEADERS: list[dict[str, Any]] = [
    {
        "name": "X-Shopify-Hmac-Sha256",
        "in": "header",
        "required": True,
        "description": "Base64 HMAC-SHA256 of the raw body with the shop's webhook secret.",
        "schema": {"type": "string"},
        "example": "0j4vJ9M2mZQ0xq3JbT6m8l1m2tq6Ym2p1K0tF1rj3mY=",
    },
    {
        "name": "X-Shopify-Shop-Domain",
        "in": "header",
        "required": True,
        "description": "The shop the webhook is for.",
        "schema": {"type": "string"},
        "example": "acme.myshopify.com",
    },
    {
        "name": "X-Shopify-Topic",
        "in": "header",
        "required": True,
        "description": "e.g. `orders/paid`, `refunds/create`, `orders/cancelled`.",
        "schema": {"type": "string"},
        "example": "orders/paid",
    },
    {
        "name": "X-Shopify-Event-Id",
        "in": "header",
        "required": False,
        "description": "Identifies the event across retries; the deduplication key.",
        "schema": {"type": "string"},
        "example": "8c8d7a1e-5f0b-4a6f-9f7e-2b1f4d6e9a10",
    },
    {
        "name": "X-Shopify-Webhook-Id",
        "in": "header",
        "required": False,
        "description": "The delivery's id; the deduplication key when no event id is sent.",
        "schema": {"type": "string"},
        "example": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    },
    {
        "name": "X-Shopify-API-Version",
        "in": "header",
        "required": False,
        "description": "The Admin API version the payload follows.",
        "schema": {"type": "string"},
        "example": "2026-10",
    },
]


# Answers that carry the resource's version for `If-Match`.
ETAG = {
    "ETag": {
        "description": "The version you read; send it back as `If-Match` to change it safely.",
        "schema": {"type": "string"},
        "example": '"3"',
    }
}
WITH_ETAG = {
    "getOrder",
    "approveOrder",
    "rejectOrder",
    "holdOrder",
    "releaseOrder",
    "processOrder",
    "getShopSettings",
    "updateShopSettings",
    "getProgram",
    "replaceProgram",
}

PATH_IDS = {
    "order_id": "The order's `id` (not the platform's order id).",
    "customer_id": "The customer's `id` (not the platform's customer id).",
    "operation_id": "The operation's `id`, from the answer that started it.",
    "key_id": "The API key's `id`.",
    "product_id": "The platform's product id.",
}


def _absent_not_null(parameter: dict[str, Any]) -> None:
    """An optional parameter is left out, never sent as null: `str | None` reads as string."""
    schema = parameter["schema"]
    alternatives = schema.get("anyOf", [])
    if not parameter.get("required") and {"type": "null"} in alternatives:
        rest = [alt for alt in alternatives if alt != {"type": "null"}]
        others = {k: v for k, v in schema.items() if k != "anyOf"}
        parameter["schema"] = (rest[0] if len(rest) == 1 else {"anyOf": rest}) | others


def _optional_body_is_absent_not_null(operation: dict[str, Any]) -> None:
    """FastAPI writes an optional body as `anyOf: [Model, null]`; generated clients then send
    `null` (or fail) when it is left out. The body is optional: it may be absent, never null."""
    body = operation.get("requestBody")
    if body is None or body.get("required"):
        return
    for media in body["content"].values():
        alternatives = media["schema"].get("anyOf", [])
        refs = [alt for alt in alternatives if "$ref" in alt]
        if len(refs) == 1 and len(alternatives) == 2 and {"type": "null"} in alternatives:
            media["schema"] = refs[0]


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add examples, webhook headers, ETags and the shared 503 to the generated document, the
    server (the API is at the service's own origin), and `security: []` on the operations that
    take no credential (health, readiness, the HMAC-signed webhook), so they read as public."""
    schema.setdefault("servers", [{"url": "/", "description": "The service's own origin."}])
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            operation_id = operation["operationId"]
            operation.setdefault("security", [])
            if operation_id == "receiveShopifyWebhook":
                operation["parameters"] = [*operation.get("parameters", []), *WEBHOOK_HEADERS]
            for parameter in operation.get("parameters", []):
                _absent_not_null(parameter)
                parameter.setdefault("description", PATH_IDS.get(parameter["name"], ""))
                example = EXAMPLE_BY_PARAMETER.get(parameter["name"].lower())
                if example is not None and "example" not in parameter:
                    parameter["example"] = example
            _optional_body_is_absent_not_null(operation)
            examples = EXAMPLES.get(operation_id, {})
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and "request" in examples:
                body["examples"] = examples["request"]
            for status, response in operation["responses"].items():
                if status.startswith("2") and operation_id in WITH_ETAG:
                    response.setdefault("headers", {}).update(ETAG)
                content = response.get("content", {}).get("application/json")
                if status.startswith("2") and content is not None and "response" in examples:
                    content["example"] = examples["response"]
                for media_type, text in TEXT_EXAMPLES.get(operation_id, {}).items():
                    if status.startswith("2") and media_type in response.get("content", {}):
                        response["content"][media_type]["example"] = text
            if operation_id != "getHealth":
                operation["responses"].setdefault("503", UNAVAILABLE)
            for status in ("429", "503"):
                if status in operation["responses"]:
                    operation["responses"][status].setdefault("headers", UNAVAILABLE["headers"])
    # No object shared between operations: the YAML copy spells each out (no `&id001` aliases).
    unshared: dict[str, Any] = json.loads(json.dumps(schema))
    return unshared

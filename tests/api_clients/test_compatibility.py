"""`openapi.yaml` against the last released contract: a change that would break existing clients
fails here unless `info.version`'s major is bumped (and then the baseline is refreshed)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.openapi import SPEC_PATH
from tests.api_clients.compat import breaking_changes, major

DOCS = SPEC_PATH.parent / "docs" / "api"
BASELINE = DOCS / "baseline.yaml"
CHANGELOG = DOCS / "CHANGELOG.md"


def load(path: Path) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(path.read_text())
    return spec


def test_the_document_keeps_every_promise_of_the_baseline() -> None:
    current, baseline = load(SPEC_PATH), load(BASELINE)
    version, released = current["info"]["version"], baseline["info"]["version"]
    assert major(version) >= major(released), f"version {version} went back from {released}"
    assert major(version) == major(released), (
        f"major version bumped to {version}: copy openapi.yaml to {BASELINE.name} "
        "and describe the breaking changes in CHANGELOG.md"
    )
    changes = breaking_changes(baseline, current)
    assert not changes, (
        "these changes break clients of the released API; make them additive, or bump the "
        "major version of API_VERSION (app/main.py) and refresh the baseline:\n"
        + "\n".join(changes)
    )


def test_the_changelog_describes_the_current_version() -> None:
    version = load(SPEC_PATH)["info"]["version"]
    assert f"## [{version}]" in CHANGELOG.read_text(), f"CHANGELOG.md has no entry for {version}"


def test_the_baseline_has_no_breaking_change_against_itself() -> None:
    baseline = load(BASELINE)
    assert breaking_changes(baseline, copy.deepcopy(baseline)) == []


def test_breaking_the_real_document_is_caught() -> None:
    """The checker on the real document: what a careless refactoring would do to it."""
    baseline = load(BASELINE)
    new = copy.deepcopy(baseline)
    schemas = new["components"]["schemas"]
    del schemas["OrderSummary"]["properties"]["currency"]
    schemas["OrderStatus"]["enum"].remove("held")
    new["paths"]["/v1/orders"]["get"]["operationId"] = "getOrders"
    schemas["ReasonRequest"]["properties"]["category"] = {"type": "string"}
    schemas["ReasonRequest"]["required"].append("category")
    found = "\n".join(breaking_changes(baseline, new))
    assert "GET /v1/orders: operationId listOrders became getOrders" in found
    assert "GET /v1/orders 200.items[].currency: response property removed" in found
    assert "enum narrowed, ['held'] gone" in found
    assert "POST /v1/orders/{order_id}/reject body.category: new required request property" in (
        found
    )


# The checker itself, on small documents.

BASE: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1.0.0"},
    "paths": {
        "/v1/orders": {
            "get": {
                "operationId": "listOrders",
                "parameters": [
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer"}},
                ],
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {"application/json": {"schema": {
                            "$ref": "#/components/schemas/OrderList"}}},
                    }
                },
            }
        },
        "/v1/orders/{order_id}/approve": {
            "post": {
                "operationId": "approveOrder",
                "parameters": [
                    {"name": "order_id", "in": "path", "required": True,
                     "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/ApproveRequest"}}},
                },
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {"application/json": {"schema": {
                            "$ref": "#/components/schemas/Order"}}},
                    }
                },
            }
        },
    },
    "components": {
        "schemas": {
            "OrderStatus": {"type": "string", "enum": ["pending", "processed"]},
            "Order": {
                "type": "object",
                "required": ["id", "status", "amount"],
                "properties": {
                    "id": {"type": "string"},
                    "status": {"$ref": "#/components/schemas/OrderStatus"},
                    "amount": {"type": "string"},
                    "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
            },
            "OrderList": {
                "type": "object",
                "required": ["items", "next_cursor"],
                "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Order"}},
                    "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
            },
            "ApproveRequest": {
                "type": "object",
                "properties": {
                    "note": {"type": "string"},
                    "status": {"$ref": "#/components/schemas/OrderStatus"},
                },
            },
        }
    },
}  # fmt: skip

Change = Callable[[dict[str, Any]], None]
Schema = dict[str, Any]
APPROVE = ("paths", "/v1/orders/{order_id}/approve", "post")


def _at(spec: dict[str, Any], *keys: str) -> Any:
    node: Any = spec
    for key in keys:
        node = node[key]
    return node


def _schemas(spec: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return schemas


BREAKING: dict[str, tuple[Change, str]] = {
    "path removed": (lambda s: s["paths"].pop("/v1/orders"), "path removed"),
    "operation removed": (
        lambda s: s["paths"]["/v1/orders/{order_id}/approve"].update(
            get=s["paths"]["/v1/orders/{order_id}/approve"].pop("post")
        ),
        "operation removed",
    ),
    "operationId renamed": (
        lambda s: _at(s, *APPROVE).update(operationId="approve"),
        "operationId approveOrder became approve",
    ),
    "response property removed": (
        lambda s: _schemas(s)["Order"]["properties"].pop("note"),
        "note: response property removed",
    ),
    "response property made optional": (
        lambda s: _schemas(s)["Order"]["required"].remove("amount"),
        "amount: response property no longer always present",
    ),
    "nested response property removed": (
        lambda s: _schemas(s)["OrderList"]["properties"].pop("next_cursor"),
        "next_cursor: response property removed",
    ),
    "enum narrowed": (
        lambda s: _schemas(s)["OrderStatus"]["enum"].remove("processed"),
        "enum narrowed, ['processed'] gone",
    ),
    "new required request property": (
        lambda s: _schemas(s)["ApproveRequest"].update(required=["note"]),
        "note: new required request property",
    ),
    "new required parameter": (
        lambda s: _at(s, *APPROVE)["parameters"].append(
            {"name": "If-Match", "in": "header", "required": True, "schema": {"type": "string"}}
        ),
        "header parameter if-match: new required parameter",
    ),
    "parameter made required": (
        lambda s: _at(s, "paths", "/v1/orders", "get")["parameters"][0].update(required=True),
        "query parameter limit: became required",
    ),
    "request body made required": (
        lambda s: _at(s, *APPROVE)["requestBody"].update(required=True),
        "request body became required",
    ),
    "response type changed": (
        lambda s: _schemas(s)["Order"]["properties"].update(amount={"type": "number"}),
        "amount: type changed from ['string'] to ['number']",
    ),
    "request type changed": (
        lambda s: _at(s, *APPROVE)["parameters"][0].update(schema={"type": "integer"}),
        "path parameter order_id: type changed",
    ),
    "success answer removed": (
        lambda s: _at(s, *APPROVE)["responses"].update({"201": _at(s, *APPROVE)["responses"].pop(
            "200")}),
        "200 answer removed",
    ),
}  # fmt: skip

ADDITIVE: dict[str, Change] = {
    "new operation": lambda s: s["paths"]["/v1/orders"].update(
        post={"operationId": "createOrder", "responses": {"201": {"description": "ok"}}}
    ),
    "new optional request property": lambda s: _schemas(s)["ApproveRequest"]["properties"].update(
        amount={"type": "string"}
    ),
    "new optional parameter": lambda s: _at(s, "paths", "/v1/orders", "get")["parameters"].append(
        {"name": "sort", "in": "query", "required": False, "schema": {"type": "string"}}
    ),
    "new response property": lambda s: _schemas(s)["Order"]["properties"].update(
        currency={"type": "string"}
    ),
    "widened enum": lambda s: _schemas(s)["OrderStatus"]["enum"].append("held"),
    "request type widened": lambda s: _schemas(s)["ApproveRequest"]["properties"].update(
        note={"anyOf": [{"type": "string"}, {"type": "null"}]}
    ),
    "new error answer": lambda s: _at(s, *APPROVE)["responses"].update(
        {"409": {"description": "conflict"}}
    ),
    "descriptions and examples": lambda s: _at(s, *APPROVE).update(
        summary="Approve", description="Credits the order.", tags=["Review"]
    ),
}


@pytest.mark.parametrize("kind", list(BREAKING))
def test_the_checker_detects_each_breaking_kind(kind: str) -> None:
    change, expected = BREAKING[kind]
    new = copy.deepcopy(BASE)
    change(new)
    found = breaking_changes(BASE, new)
    assert any(expected in problem for problem in found), (kind, found)


@pytest.mark.parametrize("kind", list(ADDITIVE))
def test_the_checker_allows_additive_changes(kind: str) -> None:
    new = copy.deepcopy(BASE)
    ADDITIVE[kind](new)
    assert breaking_changes(BASE, new) == [], kind


def test_the_checker_follows_refs_into_lists_of_items() -> None:
    new = copy.deepcopy(BASE)
    _schemas(new)["Order"]["properties"]["status"] = {"type": "integer"}
    found = breaking_changes(BASE, new)
    assert any("GET /v1/orders 200.items[].status: type changed" in p for p in found), found


def _with_event_stream(spec: dict[str, Any], schema: Schema) -> dict[str, Any]:
    new = copy.deepcopy(spec)
    new["paths"]["/v1/events"] = {
        "get": {
            "operationId": "streamEvents",
            "responses": {
                "200": {"description": "ok", "content": {"text/event-stream": {"schema": schema}}}
            },
        }
    }
    return new


EVENT: Schema = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {"event": {"const": "order.status_changed"}, "data": {"type": "string"}},
}


def test_declaring_the_events_of_an_opaque_stream_is_additive() -> None:
    opaque = _with_event_stream(BASE, {"type": "string"})
    declared = _with_event_stream(BASE, EVENT)
    assert breaking_changes(opaque, declared) == []
    # Once declared, the events are compared like any response.
    narrowed = _with_event_stream(BASE, {**EVENT, "required": ["event"]})
    found = breaking_changes(declared, narrowed)
    assert any("data: response property no longer always present" in p for p in found), found

"""The document as a contract: every operation named, described, exemplified and honest about its
errors, and every live answer of a full scenario valid against the schema it declares."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import jsonschema
import pytest
import yaml
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from openapi_spec_validator import validate

from app import deps
from app.main import ROUTERS
from app.openapi import SPEC_PATH
from tests.api_clients.scenario import drive
from tests.support import Stack

PROBLEM = "application/problem+json"
METHODS = {"get", "post", "put", "patch", "delete"}
CAMEL_CASE = re.compile(r"^[a-z]+(?:[A-Z][a-z0-9]+)*$")
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")

# Documented exceptions, each with its reason.
NO_VALIDATION_ERROR = {
    # The body is read raw (its signature is checked first); bad headers answer 400 or 401,
    # malformed JSON with a valid signature is acknowledged with 200 so Shopify stops retrying.
    "receiveShopifyWebhook",
}
NO_NOT_FOUND = {
    # PUT creates the product when it is missing: there is nothing to be not found.
    "replaceCatalogProduct",
}
NO_BODY_VALIDATION = {
    # `text/event-stream` never ends by itself: its events are checked against their schema by
    # tests/events and schemathesis; its refusals (401, 503) like every other problem document.
    "streamEvents",
}


def load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return spec


SPEC = load_spec()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def by_operation_id(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operationId"]: op for _, _, op in operations(spec)}


FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def rfc3339_utc(value: object) -> bool:
    """Timestamps are RFC 3339 in UTC, e.g. `2026-11-25T22:42:13.512332Z`."""
    if not isinstance(value, str):
        return True
    if not RFC3339.fullmatch(value):
        raise ValueError(f"not RFC 3339: {value}")
    if datetime.fromisoformat(value).utcoffset() != timedelta(0):
        raise ValueError(f"not UTC: {value}")
    return True


@FORMATS.checks("date", raises=ValueError)
def iso_date(value: object) -> bool:
    if isinstance(value, str):
        datetime.strptime(value, "%Y-%m-%d")  # noqa: DTZ007 - a calendar day has no zone
    return True


def validator(schema: dict[str, Any], spec: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A Draft 2020-12 validator whose `#/components/...` refs resolve in `spec`."""
    root = {**schema, "components": spec["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=FORMATS)


def _calls(dependant: Dependant) -> set[Any]:
    found: set[Any] = set()
    for sub in dependant.dependencies:
        found |= {sub.call} | _calls(sub)
    return found


def _route_dependencies() -> dict[str, set[Any]]:
    """The dependencies each route runs: which credentials and roles it checks."""
    return {
        str(route.operation_id): _calls(route.dependant)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
    }


DEPENDENCIES = _route_dependencies()


def test_the_committed_document_validates_against_openapi_3_1() -> None:
    assert SPEC["openapi"].startswith("3.1")
    validate(SPEC)  # raises with the offending JSON pointer


def test_the_checks_below_can_fail() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validator({"type": "string", "format": "date-time"}, SPEC).validate(
            "2026-11-25T22:42:13+01:00"
        )
    with pytest.raises(jsonschema.ValidationError):
        validator({"$ref": "#/components/schemas/CustomerRead"}, SPEC).validate({"id": 7})


def test_tags_are_declared_with_descriptions_and_group_every_operation() -> None:
    declared = {tag["name"]: tag for tag in SPEC["tags"]}
    assert all(tag.get("description") for tag in declared.values())
    used = {tag for _, _, op in operations(SPEC) for tag in op.get("tags", [])}
    assert used == set(declared), "every declared tag groups at least one operation"
    for path, method, op in operations(SPEC):
        assert len(op.get("tags", [])) == 1, (method, path)


@pytest.mark.parametrize(
    ("path", "operation"),
    [(path, op) for path, _, op in operations(SPEC)],
    ids=[op["operationId"] for _, _, op in operations(SPEC)],
)
def test_every_operation_is_named_described_exemplified_and_declares_its_errors(
    path: str, operation: dict[str, Any]
) -> None:
    operation_id = operation["operationId"]
    assert CAMEL_CASE.match(operation_id), operation_id
    assert operation.get("summary") and operation.get("description"), operation_id
    responses: dict[str, Any] = operation["responses"]

    # Examples: the request body's, the success answer's, and each parameter's.
    body = operation.get("requestBody")
    if body is not None:
        for media in body["content"].values():
            assert media.get("examples"), f"{operation_id}: request body without examples"
    successes = [code for code in responses if code.startswith("2")]
    assert len(successes) == 1, operation_id
    for media_type, media in responses[successes[0]].get("content", {}).items():
        assert "example" in media, f"{operation_id}: {media_type} answer without an example"
    for parameter in operation.get("parameters", []):
        assert parameter.get("description"), (operation_id, parameter["name"])
        assert "example" in parameter, (operation_id, parameter["name"])

    # Errors: each a problem document with the shared schema, each one it can answer declared.
    errors = {code for code in responses if code[0] in "45"}
    for code in errors:
        content = responses[code]["content"]
        assert set(content) == {PROBLEM}, (operation_id, code)
        assert content[PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
    dependencies = DEPENDENCIES[operation_id]
    callers = (deps.get_caller, deps.get_read_caller, deps.require_admin_token)
    authenticated = any(caller in dependencies for caller in callers)
    assert authenticated == bool(operation.get("security")), operation_id
    if authenticated or operation_id == "receiveShopifyWebhook":  # signed instead of a key
        assert "401" in errors, operation_id
    roles = (deps.get_admin_caller, deps.get_reviewer_caller, deps.get_read_reviewer_caller)
    if any(role in dependencies for role in roles):
        assert "403" in errors, f"{operation_id}: restricted to roles but no 403"
    else:
        assert "403" not in errors, f"{operation_id}: declares a 403 it cannot answer"
    if (operation.get("parameters") or body) and operation_id not in NO_VALIDATION_ERROR:
        assert "422" in errors, operation_id
    if "{" in path and operation_id not in NO_NOT_FOUND:
        assert "404" in errors, operation_id
    if operation_id != "getHealth":  # every other operation needs the database or Redis
        assert "503" in errors, operation_id
        assert "Retry-After" in responses["503"].get("headers", {}), operation_id


def test_every_list_is_cursor_paginated_the_same_way() -> None:
    lists = [op for _, _, op in operations(SPEC) if op["operationId"].startswith("list")]
    assert len(lists) >= 4
    for op in lists:
        params = {p["name"]: p for p in op.get("parameters", [])}
        assert {"cursor", "limit"} <= set(params), op["operationId"]
        limit = params["limit"]["schema"]
        assert (limit["minimum"], limit["maximum"]) == (1, 200), op["operationId"]
        assert "400" in op["responses"], "an unreadable cursor is a 400 invalid_cursor"
        ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = SPEC["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert {"items", "next_cursor"} <= set(page["required"]), op["operationId"]


def _types(schema: dict[str, Any]) -> set[Any]:
    return {alt.get("type") for alt in schema.get("anyOf", [schema])} - {"null"}


def test_fields_are_snake_case_and_ids_are_strings_everywhere() -> None:
    for model, schema in SPEC["components"]["schemas"].items():
        for name, prop in schema.get("properties", {}).items():
            assert re.fullmatch(r"[a-z][a-z0-9_]*", name), (model, name)
            if name == "id" or name.endswith("_id") or name == "ids":
                item = prop.get("items", prop) if name == "ids" else prop
                assert _types(item) == {"string"}, f"{model}.{name} is an id: a string"
    for _, _, op in operations(SPEC):  # and clients pass back what they read
        for parameter in op.get("parameters", []):
            if parameter["name"].endswith("_id") and parameter["in"] in ("path", "query"):
                assert _types(parameter["schema"]) == {"string"}, op["operationId"]


def test_amounts_travel_with_their_currency() -> None:
    """Every schema with an amount has a `currency`, or is only ever nested in one that has."""
    schemas = SPEC["components"]["schemas"]
    nested_in_priced = {
        "CustomerHistory",  # in OrderSummary/OrderRead
        "OrderLineRead",  # in OrderRead
        "LineBreakdown",  # in BreakdownRead
        "SimulationTotals",  # in SimulationResult
        "DailyRow",  # in DailyFigures
        "TopCustomer",  # in TopCustomers
        "Program",  # rates, and amounts in the shop's currency (ShopSettings.currency)
        "ProgramRead",
        "HoldRules",
        "SettingsUpdate",
        "ApproveRequest",  # in the order's currency
        "ProcessRequest",
        "Campaign",
        "Tier",
        "ExpiringCredit",  # in CustomerRead
        "RedeemedCredit",  # in RedemptionRead
        "RedemptionRequest",  # in the shop's currency
    }
    for model, schema in schemas.items():
        props = schema.get("properties", {})
        amounts = [n for n in props if n.endswith(("_amount", "amount", "balance"))]
        if amounts and model not in nested_in_priced:
            assert "currency" in props, f"{model} has {amounts} but no currency"


def test_examples_match_the_schemas_they_illustrate() -> None:
    checked = 0
    for _, _, op in operations(SPEC):
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None and "$ref" in body["schema"]:
            for example in body.get("examples", {}).values():
                validator(body["schema"], SPEC).validate(example["value"])
                checked += 1
        for response in op["responses"].values():
            media = response.get("content", {}).get("application/json")
            if media is not None and "example" in media:
                validator(media["schema"], SPEC).validate(media["example"])
                checked += 1
        for parameter in op.get("parameters", []):
            if "example" in parameter:
                validator(parameter["schema"], SPEC).validate(parameter["example"])
                checked += 1
    assert checked > 60


async def test_live_answers_of_every_operation_match_their_declared_schemas(
    stack: Stack,
) -> None:
    exchanges = await drive(stack)
    operations_by_id = by_operation_id(SPEC)
    assert {e.operation_id for e in exchanges} == set(operations_by_id), "call every operation"
    for exchange in exchanges:
        op = operations_by_id[exchange.operation_id]
        declared = op["responses"].get(str(exchange.status))
        assert declared is not None, (exchange.operation_id, exchange.status, "not declared")
        content = declared["content"]
        assert exchange.media_type in content, (exchange.operation_id, exchange.media_type)
        declared_headers = {name.lower() for name in declared.get("headers", {})}
        for header in ("etag", "retry-after"):
            if header in exchange.headers:
                assert header in declared_headers, (exchange.operation_id, header, "undeclared")
        if exchange.operation_id in NO_BODY_VALIDATION and exchange.status < 400:
            continue
        schema = content[exchange.media_type]["schema"]
        errors = [e.message for e in validator(schema, SPEC).iter_errors(exchange.body)]
        assert not errors, (exchange.operation_id, exchange.status, errors)

"""The stored form of a platform snapshot: every fact but the catalog's, and back again."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from app.core.snapshots import (
    PlatformCustomer,
    PlatformLine,
    PlatformOrder,
    snapshot_from_json,
    snapshot_to_json,
)

text = st.text(max_size=12)
maybe_text = st.none() | text
tags = st.lists(text, max_size=3).map(tuple)
amounts = st.integers(min_value=0, max_value=10**9)
moments = st.none() | st.datetimes(timezones=st.just(UTC))

lines = st.builds(
    PlatformLine,
    external_id=text,
    title=text,
    quantity=st.integers(min_value=1, max_value=100),
    unit_price=amounts,
    discount_amount=amounts,
    gift_card=st.booleans(),
    product_id=maybe_text,
    variant_id=maybe_text,
    sku=maybe_text,
    vendor=maybe_text,
    tax_amount=amounts,
    tip=st.booleans(),
    removed_quantity=st.integers(min_value=0, max_value=10),
    product_type=maybe_text,
    product_tags=tags,
    collections=tags,
)
customers = st.builds(
    PlatformCustomer,
    external_id=text,
    email=maybe_text,
    first_name=maybe_text,
    last_name=maybe_text,
    tags=tags,
)
orders = st.builds(
    PlatformOrder,
    external_id=text,
    currency=st.sampled_from(["USD", "EUR", "JPY"]),
    lines=st.lists(lines, max_size=4).map(tuple),
    total_amount=amounts,
    name=maybe_text,
    email=maybe_text,
    customer=st.none() | customers,
    financial_status=maybe_text,
    paid=st.booleans(),
    test=st.booleans(),
    created_at=moments,
    cancelled_at=moments,
    updated_at=moments,
    tags=tags,
    taxes_included=st.booleans(),
    shipping_amount=amounts,
    paid_with_credit_amount=st.none() | amounts,
    credit_gateways=st.lists(text, max_size=3).map(tuple),
    b2b=st.booleans(),
    company_location_id=maybe_text,
    presentment_currency=st.none() | st.sampled_from(["EUR", "JPY"]),
    presentment_total_amount=st.none() | amounts,
)


def by_asdict(order: PlatformOrder) -> dict[str, Any]:
    """The reference form: everything `dataclasses.asdict` gives, catalog facts left out."""
    data = dataclasses.asdict(order)
    for key in ("created_at", "cancelled_at", "updated_at"):
        data[key] = data[key].isoformat() if data[key] is not None else None
    for line in data["lines"]:
        for catalog_field in ("product_type", "product_tags", "collections"):
            del line[catalog_field]
    return data


def without_catalog(order: PlatformOrder) -> PlatformOrder:
    plain = tuple(
        dataclasses.replace(line, product_type=None, product_tags=(), collections=())
        for line in order.lines
    )
    return dataclasses.replace(order, lines=plain)


@given(orders)
def test_the_stored_form_holds_every_fact_but_the_catalogs_and_reads_back(
    order: PlatformOrder,
) -> None:
    stored = orjson.loads(orjson.dumps(snapshot_to_json(order)))  # as the JSONB column keeps it
    assert stored == orjson.loads(orjson.dumps(by_asdict(order)))
    assert snapshot_from_json(stored) == without_catalog(order)


def test_a_snapshot_stored_before_b2b_locations_reads_its_company_as_the_location() -> None:
    stored = snapshot_to_json(PlatformOrder("1", "USD", (), 0))
    del stored["b2b"], stored["company_location_id"]
    old = snapshot_from_json({**stored, "company_id": "loc-9"})
    assert (old.b2b, old.company_location_id) == (True, "loc-9")
    assert snapshot_from_json({**stored, "company_id": None}).b2b is False


def test_the_stored_form_of_a_sample_order() -> None:
    order = PlatformOrder(
        external_id="1001",
        currency="USD",
        lines=(PlatformLine("1", "Shoe", 2, 4000, 500, product_id="9", product_type="Shoes"),),
        total_amount=7500,
        customer=PlatformCustomer("7", "maria@example.com", tags=("vip",)),
        updated_at=datetime(2026, 11, 20, 15, 15, 9, tzinfo=UTC),
    )
    stored = snapshot_to_json(order)
    assert stored["updated_at"] == "2026-11-20T15:15:09+00:00"
    assert stored["lines"][0]["product_id"] == "9" and "product_type" not in stored["lines"][0]
    assert stored["customer"] == {
        "external_id": "7",
        "email": "maria@example.com",
        "first_name": None,
        "last_name": None,
        "tags": ("vip",),
        "verified_email": None,
        "state": None,
    }

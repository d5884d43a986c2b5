"""ETag / If-Match on the shop's settings and program: a stale write is a 412, never a loss."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from app.main import create_app
from tests.support import ShopHandle, Stack


async def read_settings(stack: Stack, shop: ShopHandle) -> Any:
    response = await stack.client.get("/v1/shop/settings", headers=shop.auth)
    assert response.status_code == 200
    return response


async def test_settings_carry_an_etag_that_changes_with_them(stack: Stack) -> None:
    shop = await stack.create_shop()
    first = await read_settings(stack, shop)
    assert first.headers["ETag"] == (await read_settings(stack, shop)).headers["ETag"]

    changed = await stack.client.patch(
        "/v1/shop/settings",
        headers=shop.auth | {"If-Match": first.headers["ETag"]},
        json={"award_delay_days": 14},
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert (await read_settings(stack, shop)).headers["ETag"] == changed.headers["ETag"]

    unchanged = await stack.client.patch(
        "/v1/shop/settings", headers=shop.auth, json={"award_delay_days": 14}
    )
    assert unchanged.headers["ETag"] == changed.headers["ETag"]
    # A secret the settings only show as "set" still changes what the tag stands for.
    token = await stack.client.patch(
        "/v1/shop/settings", headers=shop.auth, json={"platform_access_token": "shpat_1"}
    )
    rotated = await stack.client.patch(
        "/v1/shop/settings", headers=shop.auth, json={"platform_access_token": "shpat_2"}
    )
    assert token.json() == rotated.json()
    assert token.headers["ETag"] != rotated.headers["ETag"]


async def test_a_stale_settings_write_is_refused_with_412(stack: Stack) -> None:
    shop = await stack.create_shop()
    stale = (await read_settings(stack, shop)).headers["ETag"]
    other_tab = await stack.client.patch(
        "/v1/shop/settings", headers=shop.auth, json={"timezone": "Europe/Berlin"}
    )
    assert other_tab.status_code == 200

    refused = await stack.client.patch(
        "/v1/shop/settings",
        headers=shop.auth | {"If-Match": stale},
        json={"timezone": "America/New_York"},
    )
    assert refused.status_code == 412
    assert refused.headers["Content-Type"] == "application/problem+json"
    body = refused.json()
    assert body["code"] == "version_mismatch"
    assert body["current_etag"] == other_tab.headers["ETag"]
    current = await read_settings(stack, shop)
    assert current.json()["timezone"] == "Europe/Berlin"

    anyway = await stack.client.patch(
        "/v1/shop/settings",
        headers=shop.auth | {"If-Match": "*"},
        json={"timezone": "America/New_York"},
    )
    assert anyway.status_code == 200
    assert anyway.json()["timezone"] == "America/New_York"


@pytest.mark.parametrize("bad", ['"a"b"', '"1", "2"', '""'])
async def test_a_malformed_if_match_is_a_400(stack: Stack, bad: str) -> None:
    shop = await stack.create_shop()
    settings = await stack.client.patch(
        "/v1/shop/settings", headers=shop.auth | {"If-Match": bad}, json={"award_delay_days": 3}
    )
    program = await stack.client.put(
        "/v1/program", headers=shop.auth | {"If-Match": bad}, json=await program_body(stack, shop)
    )
    for response in (settings, program):
        assert (response.status_code, response.json()["code"]) == (400, "invalid_if_match")
    assert (await read_settings(stack, shop)).json()["award_delay_days"] == 0


async def program_body(stack: Stack, shop: ShopHandle) -> dict[str, Any]:
    current: dict[str, Any] = (await stack.client.get("/v1/program", headers=shop.auth)).json()
    return {k: v for k, v in current.items() if k not in ("version", "created_at")}


async def test_the_program_etag_is_its_version_and_guards_a_replace(stack: Stack) -> None:
    shop = await stack.create_shop()
    read = await stack.client.get("/v1/program", headers=shop.auth)
    version = read.json()["version"]
    assert read.headers["ETag"] == f'"{version}"'
    body = await program_body(stack, shop) | {"base_rate": "3"}

    replaced = await stack.client.put(
        "/v1/program", headers=shop.auth | {"If-Match": read.headers["ETag"]}, json=body
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.headers["ETag"] == f'"{version + 1}"'
    assert replaced.json()["version"] == version + 1

    stale = await stack.client.put(
        "/v1/program",
        headers=shop.auth | {"If-Match": read.headers["ETag"]},
        json=body | {"base_rate": "9"},
    )
    assert stale.status_code == 412
    assert (stale.json()["code"], stale.json()["version"]) == ("version_mismatch", version + 1)
    after = await stack.client.get("/v1/program", headers=shop.auth)
    assert (after.json()["version"], after.json()["base_rate"]) == (version + 1, "3")
    assert after.headers["ETag"] == replaced.headers["ETag"]


def test_the_schema_declares_if_match_and_412_on_the_guarded_writes() -> None:
    schema = create_app(Settings()).openapi()
    for path, method in (
        ("/v1/shop/settings", "patch"),
        ("/v1/program", "put"),
        ("/v1/orders/{order_id}/approve", "post"),
    ):
        operation = schema["paths"][path][method]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert "If-Match" in headers, path
        assert {"400", "412"} <= operation["responses"].keys(), path

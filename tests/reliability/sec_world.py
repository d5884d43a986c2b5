"""A shop with one of everything, and snapshots of a shop's rows, for the security tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from app.shops.models import ApiKeyRole, ProcessingMode
from tests.payloads import new_order_id, paid_order
from tests.support import ShopHandle, Stack


@dataclass
class ShopWorld:
    """A shop holding an order of each kind, a customer, a key, an operation and a product."""

    shop: ShopHandle
    pending_order_id: str
    pending_external_id: str
    credited_order_id: str
    customer_id: str
    customer_email: str
    viewer_key_id: str
    viewer_key_prefix: str
    operation_id: str
    product_id: str
    product_title: str

    def markers(self) -> list[str]:
        """Strings that only this shop's data contains: none may reach another shop."""
        return [
            self.shop.domain,
            self.shop.webhook_secret,
            self.shop.api_key,
            self.customer_email,
            self.viewer_key_prefix,
            self.product_title,
            self.pending_external_id,
        ]


async def build_world(stack: Stack, name: str) -> ShopWorld:
    shop = await stack.create_shop(f"{name}-{new_order_id()}.myshopify.com")
    client = stack.client
    email = f"{name}.{new_order_id()}@example.com"
    customer = paid_order()["customer"] | {"id": new_order_id(), "email": email}

    # A credited order made through a background operation: manual, pending, switch with process.
    await client.patch(
        "/v1/shop/settings", headers=shop.auth, json={"processing_mode": ProcessingMode.manual}
    )
    credited_external = new_order_id()
    await stack.deliver(shop, paid_order(id=credited_external, customer=customer, email=email))
    await stack.run_worker()
    switched = await client.patch(
        "/v1/shop/settings",
        headers=shop.auth,
        json={"processing_mode": "automatic", "pending_orders": "process"},
    )
    assert switched.status_code == 200, switched.text
    operation_id = switched.json()["operation"]["id"]
    await stack.run_worker()

    # A pending order waiting for review.
    await client.patch("/v1/shop/settings", headers=shop.auth, json={"processing_mode": "manual"})
    pending_external = new_order_id()
    await stack.deliver(shop, paid_order(id=pending_external, customer=customer, email=email))
    await stack.run_worker()

    credited = await stack.order(shop, credited_external)
    pending = await stack.order(shop, pending_external)
    assert credited["status"] == "processed", credited
    assert pending["status"] == "pending", pending

    viewer = await client.post(
        "/v1/api-keys", headers=shop.auth, json={"name": f"{name} viewer", "role": "viewer"}
    )
    assert viewer.status_code == 201, viewer.text
    product_id, title = str(new_order_id()), f"{name} secret product {new_order_id()}"
    product = await client.put(
        f"/v1/catalog/products/{product_id}", headers=shop.auth, json={"title": title}
    )
    assert product.status_code == 200, product.text
    return ShopWorld(
        shop=shop,
        pending_order_id=pending["id"],
        pending_external_id=str(pending_external),
        credited_order_id=credited["id"],
        customer_id=credited["customer_id"],
        customer_email=email,
        viewer_key_id=viewer.json()["id"],
        viewer_key_prefix=viewer.json()["prefix"],
        operation_id=str(operation_id),
        product_id=product_id,
        product_title=title,
    )


async def add_role_key(stack: Stack, shop: ShopHandle, role: ApiKeyRole) -> dict[str, str]:
    return await stack.add_key(shop, role)


# Tables of no shop: their whole content is compared (a request of one shop must change none).
_UNOWNED = "whole table"
_SHOP_TABLES = """
SELECT c.relname AS table_name,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
               AND a.attname = 'shop_id' AND NOT a.attisdropped) AS has_shop_id,
       (SELECT json_build_array(fa.attname, pc.relname, pa.attname)
        FROM pg_constraint k
        JOIN pg_class pc ON pc.oid = k.confrelid
        JOIN pg_attribute fa ON fa.attrelid = k.conrelid AND fa.attnum = k.conkey[1]
        JOIN pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = k.confkey[1]
        WHERE k.conrelid = c.oid AND k.contype = 'f'
          AND EXISTS (SELECT 1 FROM pg_attribute s WHERE s.attrelid = k.confrelid
                      AND s.attname = 'shop_id' AND NOT s.attisdropped)
        ORDER BY k.conname LIMIT 1) AS parent
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'alembic_version'
ORDER BY c.relname
"""


async def snapshot(stack: Stack, shop_id: int) -> dict[str, list[Any]]:
    """Every row of every table that belongs to the shop, as JSON text: by its `shop_id`, by its
    parent's (an order line by its order's), or the whole table when it belongs to no shop
    (idempotency keys, OAuth states): nothing may change there either."""
    async with stack.resources.sessionmaker() as session:
        tables = (await session.execute(text(_SHOP_TABLES))).all()
        rows: dict[str, list[Any]] = {}
        for table, has_shop_id, parent in tables:
            if table == "shops":
                query = "SELECT row_to_json(t)::text FROM shops t WHERE id = :id"
            elif has_shop_id:
                query = f'SELECT row_to_json(t)::text FROM "{table}" t WHERE shop_id = :id'
            elif parent is not None:
                column, parent_table, parent_column = parent
                query = (
                    f'SELECT row_to_json(t)::text FROM "{table}" t JOIN "{parent_table}" p'
                    f' ON p."{parent_column}" = t."{column}" WHERE p.shop_id = :id'
                )
            else:
                query = f'SELECT row_to_json(t)::text FROM "{table}" t'
            rows[table] = sorted(await session.scalars(text(query), {"id": shop_id}))
    return rows


def count_rows(rows: dict[str, list[Any]]) -> int:
    return sum(len(v) for v in rows.values())


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)

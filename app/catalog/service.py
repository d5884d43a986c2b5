"""The shop's catalog: kept from product webhooks and the admin endpoint, read to enrich lines."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Product
from app.core.snapshots import PlatformOrder
from app.core.uow import Part, uow_of


async def upsert_product(
    session: AsyncSession,
    shop_id: int,
    external_id: str,
    *,
    title: str | None,
    product_type: str | None,
    vendor: str | None,
    tags: Sequence[str],
    collections: Sequence[str] | None = None,
) -> Product:
    """Create or update a product. `collections=None` keeps the ones already known (product
    webhooks do not carry collections)."""
    if (read := uow_of(session).get(BatchProducts)) is not None:
        read.by_shop.pop(shop_id, None)  # what a batch read is stale now
    values: dict[str, object] = {
        "title": title,
        "product_type": product_type or None,
        "vendor": vendor or None,
        "tags": list(tags),
    }
    update = {**values, "updated_at": func.now()}
    if collections is not None:
        update["collections"] = list(collections)
    stmt = (
        insert(Product)
        .values(
            shop_id=shop_id, external_id=external_id, collections=list(collections or ()), **values
        )
        .on_conflict_do_update(index_elements=[Product.shop_id, Product.external_id], set_=update)
        .returning(Product)
    )
    return (await session.execute(stmt)).scalar_one()


async def get_product(session: AsyncSession, shop_id: int, external_id: str) -> Product | None:
    return await session.scalar(
        select(Product).where(Product.shop_id == shop_id, Product.external_id == external_id)
    )


async def load_products(
    session: AsyncSession, shop_id: int, product_ids: set[str]
) -> dict[str, Product]:
    if not product_ids:
        return {}
    read = uow_of(session).get(BatchProducts)
    batch = None if read is None else read.by_shop
    if batch is not None and shop_id in batch and product_ids <= batch[shop_id][0]:
        found = batch[shop_id][1]
        return {pid: found[pid] for pid in product_ids if pid in found}
    rows = await session.scalars(_LOAD_PRODUCTS, {"shop": shop_id, "ids": list(product_ids)})
    return {p.external_id: p for p in rows}


_LOAD_PRODUCTS = select(Product).where(  # built once: it runs for every batch of orders
    Product.shop_id == bindparam("shop"), Product.external_id.in_(bindparam("ids", expanding=True))
)


@dataclass
class BatchProducts(Part):
    """A batch's products read once, per shop: (the ids asked for, the products found)."""

    by_shop: dict[int, tuple[set[str], dict[str, Product]]] = field(default_factory=dict)


async def prefetch_products(session: AsyncSession, shop_id: int, product_ids: set[str]) -> None:
    """Read the catalog facts of a batch's products once; `load_products` answers from them
    for the rest of the transaction, until a product of the shop is written."""
    products = await load_products(session, shop_id, product_ids)
    uow_of(session).open(BatchProducts).by_shop[shop_id] = (set(product_ids), products)


def product_ids(order: PlatformOrder) -> set[str]:
    return {line.product_id for line in order.lines if line.product_id}


def apply_catalog(order: PlatformOrder, products: dict[str, Product]) -> PlatformOrder:
    """The order with each line's catalog facts (type, tags, collections) filled in."""
    if not products:
        return order
    lines = []
    for line in order.lines:
        product = products.get(line.product_id or "")
        lines.append(
            line
            if product is None
            else dataclasses.replace(
                line,
                product_type=product.product_type,
                product_tags=tuple(product.tags),
                collections=tuple(product.collections),
            )
        )
    return dataclasses.replace(order, lines=tuple(lines))


async def enrich(session: AsyncSession, shop_id: int, order: PlatformOrder) -> PlatformOrder:
    return apply_catalog(order, await load_products(session, shop_id, product_ids(order)))

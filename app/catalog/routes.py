from __future__ import annotations

from fastapi import APIRouter

from app.catalog import service
from app.catalog.models import Product
from app.catalog.schemas import ProductRead, ProductWrite
from app.core.errors import Forbidden, NotFound, Unauthorized, problem_responses
from app.deps import AdminCallerDep, CallerDep, SessionDep

router = APIRouter(prefix="/v1/catalog/products", tags=["Program"])


def _read(product: Product) -> ProductRead:
    return ProductRead(
        id=product.external_id,
        title=product.title,
        product_type=product.product_type,
        vendor=product.vendor,
        tags=product.tags,
        collections=product.collections,
        updated_at=product.updated_at,
    )


@router.put(
    "/{product_id}",
    operation_id="replaceCatalogProduct",
    summary="Create or replace a catalog product",
    description=(
        "What program rules match on beyond a line's own ids: product type, tags and "
        "collections. `products/create` and `products/update` webhooks keep type, vendor and "
        "tags current; collections come from here."
    ),
    responses=problem_responses(Unauthorized, Forbidden),
)
async def put_catalog_product(
    session: SessionDep, caller: AdminCallerDep, product_id: str, body: ProductWrite
) -> ProductRead:
    product = await service.upsert_product(
        session,
        caller.shop.id,
        product_id,
        title=body.title,
        product_type=body.product_type,
        vendor=body.vendor,
        tags=body.tags,
        collections=body.collections,
    )
    return _read(product)


@router.get(
    "/{product_id}",
    operation_id="getCatalogProduct",
    summary="Get a catalog product",
    description="The product as program rules see it: type, vendor, tags and collections.",
    responses=problem_responses(Unauthorized, NotFound),
)
async def get_catalog_product(
    session: SessionDep, caller: CallerDep, product_id: str
) -> ProductRead:
    product = await service.get_product(session, caller.shop.id, product_id)
    if product is None:
        raise NotFound(f"product {product_id} is not in the catalog")
    return _read(product)

from __future__ import annotations

from fastapi import APIRouter, status

from app.core.errors import ProblemError, Unauthorized, problem_responses
from app.deps import AdminDep, SessionDep
from app.shops import service
from app.shops.schemas import ShopCreate, ShopCreated

router = APIRouter(prefix="/v1/admin/shops", tags=["Operator"], dependencies=[AdminDep])


class InvalidShop(ProblemError):
    status, code, title = 422, "invalid_shop", "The shop's settings are not valid"


@router.post(
    "",
    operation_id="createShop",
    summary="Create a shop",
    description="Creates the shop with the default program and its first admin API key.",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(Unauthorized, service.ShopExists, InvalidShop),
)
async def create_shop(session: SessionDep, body: ShopCreate) -> ShopCreated:
    try:
        created = await service.create_shop(
            session,
            domain=body.domain,
            currency=body.currency,
            mode=body.processing_mode,
            timezone=body.timezone,
            webhook_secret=body.webhook_secret,
        )
    except ValueError as exc:
        raise InvalidShop(str(exc)) from exc
    shop = created.shop
    return ShopCreated(
        id=str(shop.id),
        domain=shop.domain,
        currency=shop.currency,
        processing_mode=shop.processing_mode,
        api_key=created.api_key,
        webhook_secret=shop.webhook_secret,
    )

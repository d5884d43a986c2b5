"""The calling shop's own settings, background operations and API keys."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.core import idempotency
from app.core.errors import (
    Forbidden,
    InvalidCursor,
    NotFound,
    Unauthorized,
    problem_responses,
)
from app.core.etags import IfMatch, InvalidIfMatch, VersionMismatch, parse_if_match
from app.core.ids import Id
from app.core.pagination import CursorQuery, LimitQuery, next_cursor
from app.deps import AdminCallerDep, CallerDep, ResourcesDep, SessionDep
from app.shops import service
from app.shops import shop_settings as settings
from app.shops.models import ApiKey
from app.shops.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyRead

JSON = "application/json"

router = APIRouter(tags=["Settings"])


@router.get(
    "/v1/shop/settings",
    operation_id="getShopSettings",
    summary="Get the shop's settings",
    description="Processing mode, hold rules, award delay, approval ceiling and integrations.",
    responses=problem_responses(Unauthorized),
)
async def get_shop_settings(caller: CallerDep, response: Response) -> settings.ShopSettings:
    response.headers["ETag"] = settings.settings_etag(caller.shop)
    return settings.read(caller.shop)


@router.patch(
    "/v1/shop/settings",
    operation_id="updateShopSettings",
    summary="Change the shop's settings",
    description=(
        "Admin keys only. Switching `processing_mode` from `manual` to `automatic` while "
        "orders are pending answers 409 `pending_orders_exist` with `pending_count`, unless "
        "`pending_orders` says `process` (approve each at its calculated amount in the "
        "background; follow `operation`) or `keep`. Automatic → manual affects new orders only."
    ),
    responses=problem_responses(
        Unauthorized,
        Forbidden,
        settings.PendingOrdersExist,
        settings.InvalidSettings,
        VersionMismatch,
        InvalidIfMatch,
    ),
)
async def update_shop_settings(
    session: SessionDep,
    res: ResourcesDep,
    caller: AdminCallerDep,
    body: settings.SettingsUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> settings.SettingsChanged:
    changed = await settings.update(
        session, caller.shop, caller.actor, body, res.secrets, if_match=parse_if_match(if_match)
    )
    response.headers["ETag"] = settings.settings_etag(caller.shop)
    return changed


@router.get(
    "/v1/operations/{operation_id}",
    operation_id="getOperation",
    summary="Follow a background operation",
    description=(
        "Progress of work started in the background (e.g. approving pending orders after a "
        "switch to automatic): poll until `status` is `done`."
    ),
    responses=problem_responses(Unauthorized, NotFound),
)
async def get_operation(
    session: SessionDep, caller: CallerDep, operation_id: Id
) -> settings.OperationRead:
    op = await settings.get_operation(session, caller.shop.id, operation_id)
    return settings.operation_read(op)


def _key_read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=str(key.id),
        name=key.name,
        role=key.role,
        prefix=key.prefix,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


@router.post(
    "/v1/api-keys",
    operation_id="createApiKey",
    summary="Create an API key",
    description="Admin keys only. The key is in the answer once; only its hash is stored.",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=problem_responses(Unauthorized, Forbidden),
)
async def create_api_key(
    session: SessionDep, caller: AdminCallerDep, body: ApiKeyCreate, request: Request
) -> Response:
    key, raw = await service.create_api_key(
        session, caller.shop, caller.actor, name=body.name, role=body.role
    )
    created = ApiKeyCreated(**_key_read(key).model_dump(), api_key=raw)
    # Stored with the key itself: a retry after a crash gets this answer, never a second key.
    return await idempotency.store_with_work(
        session, request, status.HTTP_201_CREATED, created.model_dump_json().encode(), JSON
    )


@router.get(
    "/v1/api-keys",
    operation_id="listApiKeys",
    summary="List the shop's API keys",
    description="Admin keys only. Oldest first, revoked keys included; never the keys themselves.",
    responses=problem_responses(Unauthorized, Forbidden, InvalidCursor),
)
async def list_api_keys(
    session: SessionDep, caller: AdminCallerDep, cursor: CursorQuery = None, limit: LimitQuery = 50
) -> ApiKeyList:
    keys = await service.list_api_keys(session, caller.shop.id, cursor=cursor, limit=limit)
    return ApiKeyList(
        items=[_key_read(key) for key in keys[:limit]],
        next_cursor=next_cursor([key.id for key in keys], limit),
    )


@router.delete(
    "/v1/api-keys/{key_id}",
    operation_id="revokeApiKey",
    summary="Revoke an API key",
    description="The key stops working at once. The last admin key cannot be revoked.",
    responses=problem_responses(Unauthorized, Forbidden, NotFound, service.LastAdminKey),
)
async def revoke_api_key(session: SessionDep, caller: AdminCallerDep, key_id: Id) -> ApiKeyRead:
    return _key_read(await service.revoke_api_key(session, caller.shop, caller.actor, key_id))

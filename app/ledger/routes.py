from __future__ import annotations

from fastapi import APIRouter

from app.deps import CallerDep, SessionDep
from app.kit.errors import InvalidCursor, NotFound, Unauthorized, problem_responses
from app.kit.ids import Id
from app.kit.pagination import CursorQuery, LimitQuery
from app.ledger import queries
from app.ledger.schemas import CustomerRead, LedgerEntryList

router = APIRouter(prefix="/v1/customers", tags=["Customers"])


@router.get(
    "/{customer_id}",
    operation_id="getCustomer",
    summary="Get a customer with their store-credit balance",
    description="The balance is the sum of the customer's ledger entries.",
    responses=problem_responses(NotFound, Unauthorized),
)
async def get_customer(session: SessionDep, caller: CallerDep, customer_id: Id) -> CustomerRead:
    return await queries.get_customer(session, caller.shop.id, caller.shop.currency, customer_id)


@router.get(
    "/{customer_id}/ledger",
    operation_id="listCustomerLedger",
    summary="List a customer's ledger entries",
    description="Credits and reversals, newest first.",
    responses=problem_responses(NotFound, InvalidCursor, Unauthorized),
)
async def list_customer_ledger(
    session: SessionDep,
    caller: CallerDep,
    customer_id: Id,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> LedgerEntryList:
    return await queries.list_ledger(
        session, caller.shop.id, customer_id, cursor=cursor, limit=limit
    )

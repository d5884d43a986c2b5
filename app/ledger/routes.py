from __future__ import annotations

from fastapi import APIRouter

from app.core.errors import Forbidden, InvalidCursor, NotFound, Unauthorized, problem_responses
from app.core.ids import Id
from app.core.pagination import CursorQuery, LimitQuery
from app.deps import CallerDep, ReadCallerDep, ReadSessionDep, ReviewerCallerDep, SessionDep
from app.ledger import queries, redemptions
from app.ledger.schemas import CustomerRead, LedgerEntryList, RedemptionRead, RedemptionRequest

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
    description="Credits, reversals, expiries and redemptions, newest first.",
    responses=problem_responses(NotFound, InvalidCursor, Unauthorized),
)
async def list_customer_ledger(
    session: ReadSessionDep,
    caller: ReadCallerDep,
    customer_id: Id,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> LedgerEntryList:
    return await queries.list_ledger(
        session, caller.shop.id, customer_id, cursor=cursor, limit=limit
    )


@router.post(
    "/{customer_id}/redemptions",
    operation_id="redeemCredit",
    summary="Spend a customer's credit (ledger-only shops)",
    description=(
        "Spends `amount` of the customer's credit, the soonest-expiring credit first, as one "
        "`redemption` ledger entry per credit spent. The same `reference` again answers the "
        "first redemption. 409 `insufficient_balance` (with `balance`) when the credit does not "
        "cover the amount; 409 `credit_spent_on_platform` for shops that push credit to "
        "Shopify, whose customers spend it at checkout."
    ),
    status_code=201,
    responses=problem_responses(
        NotFound,
        Unauthorized,
        Forbidden,
        redemptions.InsufficientBalance,
        redemptions.ReferenceReused,
        redemptions.SpentOnPlatform,
        redemptions.InvalidRedemptionAmount,
    ),
)
async def redeem_credit(
    session: SessionDep, caller: ReviewerCallerDep, customer_id: Id, body: RedemptionRequest
) -> RedemptionRead:
    return await redemptions.redeem(session, caller.shop, customer_id, body)

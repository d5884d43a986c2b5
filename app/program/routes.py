from __future__ import annotations

from fastapi import APIRouter, Response

from app.core.errors import Forbidden, Unauthorized, problem_responses
from app.core.etags import IfMatch, InvalidIfMatch, VersionMismatch, etag, parse_version_if_match
from app.deps import AdminCallerDep, CallerDep, SessionDep
from app.program import service
from app.program.rules import Program
from app.program.schemas import (
    PreviewRequest,
    PreviewResponse,
    ProgramRead,
    SimulationRequest,
    SimulationResult,
)

router = APIRouter(tags=["Program"])


@router.get(
    "/v1/program",
    operation_id="getProgram",
    summary="Get the cashback program",
    description="The shop's current program version: rates, rules, tiers, campaigns, options.",
    responses=problem_responses(Unauthorized),
)
async def get_program(session: SessionDep, caller: CallerDep, response: Response) -> ProgramRead:
    program = await service.get_program(session, caller.shop)
    response.headers["ETag"] = etag(program.version)
    return program


@router.put(
    "/v1/program",
    operation_id="replaceProgram",
    summary="Replace the cashback program",
    description=(
        "Stores the body as the program's next version (admin keys only). Orders already "
        "calculated keep the version they were calculated with.\n\n"
        "A line's rate: an exclusion matching it wins; else the most specific rate rule "
        "(variant > product > SKU > collection > tag > product type > vendor; ties by "
        "`priority`, then list order); else the B2B rate for company orders; else the best "
        "customer tier; else the base rate. Active campaigns then apply "
        "`rate × multiplier + bonus_points`."
    ),
    responses=problem_responses(
        Unauthorized, Forbidden, service.InvalidProgram, VersionMismatch, InvalidIfMatch
    ),
)
async def replace_program(
    session: SessionDep,
    caller: AdminCallerDep,
    body: Program,
    response: Response,
    if_match: IfMatch = None,
) -> ProgramRead:
    program = await service.replace_program(
        session, caller.shop, body, caller.actor, if_match=parse_version_if_match(if_match)
    )
    response.headers["ETag"] = etag(program.version)
    return program


@router.post(
    "/v1/cashback/preview",
    operation_id="previewCashback",
    summary="Preview an order's cashback",
    description="The breakdown an order would get now, and under a draft program; no effects.",
    responses=problem_responses(Unauthorized, service.InvalidOrderPayload, service.InvalidProgram),
)
async def preview_cashback(
    session: SessionDep, caller: CallerDep, body: PreviewRequest
) -> PreviewResponse:
    return await service.preview(session, caller.shop, body.order, body.program)


@router.post(
    "/v1/program/simulate",
    operation_id="simulateProgram",
    summary="Price a draft program over past orders",
    description="Current vs draft totals over the shop's paid orders of a date range.",
    responses=problem_responses(Unauthorized, service.InvalidProgram),
)
async def simulate_program(
    session: SessionDep, caller: CallerDep, body: SimulationRequest
) -> SimulationResult:
    return await service.simulate(session, caller.shop, body.program, body.date_from, body.date_to)

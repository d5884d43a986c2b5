from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.program.models import ProgramVersion


async def current_program(session: AsyncSession, shop_id: int) -> ProgramVersion:
    result = await session.execute(
        select(ProgramVersion)
        .where(ProgramVersion.shop_id == shop_id)
        .order_by(ProgramVersion.version.desc())
        .limit(1)
    )
    return result.scalar_one()

import asyncio

from alembic import command
from alembic.script import ScriptDirectory

from app.migrate import alembic_config


async def test_the_models_match_the_migrations(template_url: str) -> None:
    # Raises when autogenerate would find a difference: a schema change without a migration.
    await asyncio.to_thread(command.check, alembic_config(template_url))


def test_alembic_has_a_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config("postgresql+asyncpg://unused")).get_heads()
    assert len(heads) == 1, heads

"""ledger erasure path

The ledger was append-only except inside a transaction that said `SET LOCAL
cashback.redacting = 'on'`: any connection could say it, and TRUNCATE was not covered. Now the
only way to remove ledger entries is `erase_shop_ledger(shop_id)`, a SECURITY DEFINER function
owned by the role `cashback_ledger_eraser` (no login): the trigger lets a DELETE through only
when it runs as that role, and the function records each erasure in `ledger_erasures` (which
keeps no personal data). UPDATE stays refused, and a statement trigger refuses TRUNCATE. The
role is cluster-wide and created once; a superuser can still do anything, as always.

Revision ID: 8d3b7e51c0f4
Revises: 5c1f0a9d2e71
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8d3b7e51c0f4"
down_revision: str | None = "5c1f0a9d2e71"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ERASER = "cashback_ledger_eraser"

APPEND_ONLY_BUT_ERASURE = f"""
CREATE OR REPLACE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_user = '{ERASER}' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'ledger_entries is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$
"""
# As the migration before this one left it.
APPEND_ONLY_BUT_REDACTING = """
CREATE OR REPLACE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('cashback.redacting', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'ledger_entries is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$
"""

ERASE_SHOP_LEDGER = """
CREATE FUNCTION erase_shop_ledger(p_shop_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    erased bigint;
BEGIN
    -- A shop's pushes go with its entries (they point at them).
    DELETE FROM credit_syncs WHERE shop_id = p_shop_id;
    DELETE FROM ledger_entries WHERE shop_id = p_shop_id;
    GET DIAGNOSTICS erased = ROW_COUNT;
    INSERT INTO ledger_erasures (shop_id, entries, erased_by) VALUES (p_shop_id, erased, session_user);
    RETURN erased;
END
$$
"""


def upgrade() -> None:
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ERASER}') THEN"
        f" CREATE ROLE {ERASER} NOLOGIN; END IF; END $$"
    )
    op.execute(
        "CREATE TABLE ledger_erasures ("
        " id bigserial PRIMARY KEY, shop_id bigint NOT NULL, entries bigint NOT NULL,"
        " erased_by text NOT NULL, erased_at timestamptz NOT NULL DEFAULT now())"
    )
    op.execute(APPEND_ONLY_BUT_ERASURE)
    op.execute(
        "CREATE FUNCTION ledger_entries_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'ledger_entries is append-only: TRUNCATE refused'"
        " USING ERRCODE = 'integrity_constraint_violation'; END $$"
    )
    op.execute(
        "CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries"
        " FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_no_truncate()"
    )
    op.execute(ERASE_SHOP_LEDGER)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {ERASER}")
    op.execute(f"GRANT SELECT, DELETE ON credit_syncs, ledger_entries TO {ERASER}")
    op.execute(f"GRANT INSERT ON ledger_erasures TO {ERASER}")
    op.execute(f"GRANT USAGE ON SEQUENCE ledger_erasures_id_seq TO {ERASER}")
    op.execute(f"ALTER FUNCTION erase_shop_ledger(bigint) OWNER TO {ERASER}")
    op.execute("REVOKE ALL ON FUNCTION erase_shop_ledger(bigint) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION erase_shop_ledger(bigint) TO CURRENT_USER")


def downgrade() -> None:
    op.execute("DROP FUNCTION erase_shop_ledger(bigint)")
    op.execute("DROP TRIGGER ledger_entries_no_truncate ON ledger_entries")
    op.execute("DROP FUNCTION ledger_entries_no_truncate()")
    op.execute(APPEND_ONLY_BUT_REDACTING)
    op.execute(f"REVOKE ALL ON credit_syncs, ledger_entries FROM {ERASER}")
    op.execute("DROP TABLE ledger_erasures")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {ERASER}")

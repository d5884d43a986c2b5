"""The unit of work: one transaction per request or job, and what it holds until its end.

Domain code flushes, never commits. What a transaction must do at its end is held in the *parts*
of its unit of work, typed objects found by their class (`uow_of(session).part(Jobs)`):

- before the commit, the parts with rows to write flush, in the order of their `stage`
  (a batch's event outcomes, then its audit rows, sync rows and figures);
- after the commit, the parts with messages send them (jobs to the queue, live events);
- on rollback every part is dropped; a savepoint restores them as they were at its start.

A part whose class says `batched = True` exists only in a batch (`unit_of_work(...,
batch=True)`, the webhook drain): elsewhere `get` answers None and its module writes at once.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import IntEnum
from typing import ClassVar, Self, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session

from app.core.broker import Broker, Job
from app.core.context import current_request_id


class Stage(IntEnum):
    """When a part flushes before the commit: lower first."""

    ROWS = 5  # rows held to write in one statement (credits: the sync rows of SYNCS name them)
    OUTCOMES = 10  # the inbox events' statuses, written last by the handlers that set them
    AUDIT = 20  # audit rows
    SYNCS = 30  # store-credit sync rows (they name ledger entries written in the batch)
    FIGURES = 40  # dashboard rollup bumps
    NONE = 100  # reads held for the transaction: nothing to write


class Part:
    """Something a transaction holds until its end. Subclasses are dataclasses whose fields are
    containers; `copy` copies each container, so a savepoint can put them back."""

    stage: ClassVar[Stage] = Stage.NONE
    batched: ClassVar[bool] = False  # opened only by a batch unit of work
    _batched_kinds: ClassVar[list[type[Part]]] = []

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.batched:
            Part._batched_kinds.append(cls)

    async def flush(self, session: AsyncSession) -> None:
        """Write what the part holds (before the commit)."""

    async def send(self, broker: Broker) -> None:
        """Send what the part holds (after the commit). Never raises."""

    def copy(self) -> Self:
        fields = {f.name: copy.copy(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return type(self)(**fields)


P = TypeVar("P", bound=Part)


class UnitOfWork:
    def __init__(self, session: AsyncSession, *, batch: bool = False) -> None:
        self.session = session
        self.batch = batch
        self._parts: dict[type[Part], Part] = {}
        if batch:
            for kind in Part._batched_kinds:
                self.open(kind)

    def open(self, kind: type[P]) -> P:
        """The part of this kind, made now if the unit of work has none yet."""
        part = self._parts.get(kind)
        if part is None:
            part = self._parts[kind] = kind()
        assert isinstance(part, kind)
        return part

    def get(self, kind: type[P]) -> P | None:
        """The part of this kind if it is open (a batched kind: only in a batch)."""
        part = self._parts.get(kind)
        assert part is None or isinstance(part, kind)
        return part

    def take(self, kind: type[P]) -> P | None:
        """The part of this kind, closed: what it held is the caller's now."""
        part = self._parts.pop(kind, None)
        assert part is None or isinstance(part, kind)
        return part

    async def flush(self) -> None:
        """Write every part's rows, in stage order (before the commit)."""
        for part in sorted(self._parts.values(), key=lambda part: part.stage):
            await part.flush(self.session)

    async def send(self, broker: Broker) -> None:
        """Send every part's messages (after the commit); the parts are closed."""
        parts, self._parts = list(self._parts.values()), {}
        for part in parts:
            await part.send(broker)

    def held_rows(self) -> list[HeldRows]:
        return [part for part in self._parts.values() if isinstance(part, HeldRows)]

    def drop(self) -> None:
        self._parts.clear()

    def checkpoint(self) -> dict[type[Part], Part]:
        return {kind: part.copy() for kind, part in self._parts.items()}

    def restore(self, saved: dict[type[Part], Part]) -> None:
        self._parts = saved


_KEY = "cashback.unit_of_work"  # the one key this service keeps in `session.info`


class HeldRows(Part):
    """Rows a batch writes in one statement instead of one statement per change (a batch's
    credits, its orders' lines). They are written at the end like any part's, and also
    before any other ORM statement of the session runs, since it may read them: reads see
    them without knowing they were held."""

    stage = Stage.ROWS  # a subclass sets `batched` (this base is never opened itself)

    async def flush(self, session: AsyncSession) -> None:
        await session.run_sync(self.write)

    def write(self, session: Session) -> None:
        """Write the rows held, and hold none (a sync session: also called mid-statement)."""
        raise NotImplementedError


@event.listens_for(Session, "do_orm_execute")
def _write_held_rows_first(state: ORMExecuteState) -> None:
    """Before an ORM statement (select, update, delete, a lazy load, `get`), the rows a batch
    holds are written; the sync session of an AsyncSession shares its `info`."""
    uow: UnitOfWork | None = state.session.info.get(_KEY)
    if uow is None or not uow.batch:
        return
    for part in uow.held_rows():
        part.write(state.session)


def uow_of(session: AsyncSession) -> UnitOfWork:
    """The unit of work of `session` (one is made for a session opened outside
    `unit_of_work`, as tests do: its jobs and events are then never sent)."""
    uow: UnitOfWork | None = session.info.get(_KEY)
    if uow is None:
        uow = session.info[_KEY] = UnitOfWork(session)
    return uow


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession], broker: Broker, *, batch: bool = False
) -> AsyncIterator[AsyncSession]:
    """A transaction: committed when the block ends, rolled back (and its parts dropped) when
    it raises; jobs and events are sent only after the commit."""
    async with sessionmaker() as session:
        uow = session.info[_KEY] = UnitOfWork(session, batch=batch)
        try:
            yield session
            await uow.flush()
        except BaseException:
            uow.drop()  # jobs of a rolled-back transaction never run, its changes are never told
            await session.rollback()
            raise
        await session.commit()
    await uow.send(broker)


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A part of a transaction that can fail alone: on error its changes are rolled back, and so
    are the jobs, events and rows it held for the end of the transaction."""
    uow = uow_of(session)
    saved = uow.checkpoint()
    try:
        async with session.begin_nested():
            yield
    except BaseException:
        uow.restore(saved)
        raise


@dataclasses.dataclass
class Jobs(Part):
    """Jobs to queue once the transaction commits (at most one per job id)."""

    held: dict[str, Job] = dataclasses.field(default_factory=dict)

    async def send(self, broker: Broker) -> None:
        await broker.enqueue(list(self.held.values()))


def defer_job(session: AsyncSession, function: str, *args: object, job_id: str) -> None:
    """Queue a job once `session` commits (a rollback drops it)."""
    jobs = uow_of(session).open(Jobs).held
    jobs.setdefault(job_id, Job(function, args, job_id, current_request_id()))


def take_jobs(session: AsyncSession) -> list[Job]:
    """The jobs `session` holds, no longer held."""
    jobs = uow_of(session).take(Jobs)
    return [] if jobs is None else list(jobs.held.values())

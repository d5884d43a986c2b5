"""What is left of each credit, and who takes from it. Pure maths, no I/O.

Every negative entry points at the credit it takes from (`reverses_entry_id`): a reversal
(a refund or cancellation), an expiry (what was left when the credit expired) or a
redemption (the customer spent it). So for every credit, always:

    reversed + expired + redeemed + left = credited,  left >= 0

and a customer's balance (the sum of their entries) is the sum of what is left of their
credits, never below zero. Spending takes the soonest-expiring credit first (credits that
never expire last, then the oldest first), as Shopify's store credit does; an expiry takes
exactly what is left; a reversal takes at most what is left (what expired or was spent is
not taken back twice: no negative surprise for the customer).

A credit's expiry is the end of the shop's local day, N days after it was credited: credited
on 3 March at 22:10 in Paris with 30 days, it can be spent until 2 April 23:59:59 Paris time,
whatever daylight saving did in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from app.core.money import to_minor

# The last second of a local day: a credit "expires on 31 January" can be spent all that day.
END_OF_DAY = time(23, 59, 59)
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CreditLeft:
    """One credit and what its consuming entries took from it (minor units, positive)."""

    entry_id: int
    amount: int
    expires_at: datetime | None = None
    reversed: int = 0
    expired: int = 0
    redeemed: int = 0

    @property
    def left(self) -> int:
        return self.amount - self.reversed - self.expired - self.redeemed


def credit_left(
    entry_id: int, amount: int, expires_at: datetime | None, taken: Mapping[str, int]
) -> CreditLeft:
    """A credit and what its consuming entries took, from their sums by entry kind
    ("reversal", "expiry", "redemption"; positive minor units)."""
    return CreditLeft(
        entry_id,
        amount,
        expires_at,
        reversed=taken.get("reversal", 0),
        expired=taken.get("expiry", 0),
        redeemed=taken.get("redemption", 0),
    )


class NotEnoughCredit(Exception):
    def __init__(self, available: int) -> None:
        super().__init__(f"only {available} available")
        self.available = available


def expires_at(credited_at: datetime, days: int, tz: ZoneInfo) -> datetime:
    """The end of the shop's local day `days` days after `credited_at` (an aware instant)."""
    local_day = credited_at.astimezone(tz).date() + timedelta(days=days)
    return datetime.combine(local_day, END_OF_DAY, tzinfo=tz)


def spending_order(credits: Iterable[CreditLeft]) -> list[CreditLeft]:
    """Soonest-expiring first, credits without expiry last, then the oldest first."""
    return sorted(
        credits,
        key=lambda c: (c.expires_at is None, c.expires_at or _NEVER, c.entry_id),
    )


def spend_amount(amount: Decimal, currency: str) -> int:
    """A spend asked in the shop's currency, in minor units: more than zero, and no more
    decimals than the currency has. Raises ValueError saying what is wrong."""
    minor = to_minor(amount, currency)
    if minor <= 0:
        raise ValueError("the amount must be greater than zero")
    return minor


def spend(credits: Sequence[CreditLeft], amount: int, now: datetime) -> list[tuple[int, int]]:
    """Which credits a spend of `amount` takes from, and how much of each: (entry id, amount).
    Credits already expired at `now` cannot be spent. Raises NotEnoughCredit when they do
    not cover it."""
    if amount <= 0:
        raise ValueError("a spend is positive")
    live = [c for c in spending_order(credits) if c.left > 0 and not is_expired(c, now)]
    available = sum(c.left for c in live)
    if available < amount:
        raise NotEnoughCredit(available)
    taken: list[tuple[int, int]] = []
    for credit in live:
        take = min(credit.left, amount)
        taken.append((credit.entry_id, take))
        amount -= take
        if amount == 0:
            break
    return taken


def is_expired(credit: CreditLeft, now: datetime) -> bool:
    return credit.expires_at is not None and now > credit.expires_at


def expiry_due(credit: CreditLeft, now: datetime) -> int:
    """What an expiry entry takes at `now`: all that is left, once the credit's day is over."""
    return credit.left if is_expired(credit, now) and credit.expired == 0 else 0


def reversal_within(credit: CreditLeft, wanted: int) -> int:
    """What a reversal may take: what the refund maths asked, at most what is left."""
    return max(min(wanted, credit.left), 0)


def due_reminder(expires: datetime, now: datetime, days_before: Iterable[int]) -> int | None:
    """The reminder to send now: of those whose time has come (`days_before` days before the
    expiry) while the credit has not expired, the closest to the expiry. A credit found late
    gets its last due reminder only, not every one it missed."""
    if now > expires:
        return None
    due = [d for d in days_before if expires - timedelta(days=d) <= now]
    return min(due) if due else None

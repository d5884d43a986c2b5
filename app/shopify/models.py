"""What the service holds for a shop that installed the app.

The access token in use stays in `shops.platform_access_token` (encrypted), where every Admin
API caller reads it, whether pasted in by hand or issued here; this row holds what only an
app install has: the token's expiry, the refresh token, the granted scopes and whether the
merchant must authorise the app again. Its presence marks the shop as installed through the
app, so its webhooks are signed with the app's client secret.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TimestampMixin, UpdatedAtMixin


class ShopifyGrant(TimestampMixin, UpdatedAtMixin, Base):
    __tablename__ = "shopify_grants"

    shop_id: Mapped[int] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    # None: no expiry known (a token that does not expire), or no token (uninstalled).
    access_token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refresh_token: Mapped[str | None] = mapped_column(Text)  # encrypted, like the access token
    refresh_token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scopes: Mapped[str] = mapped_column(Text, default="", server_default="", nullable=False)
    # Set when a refresh failed for good: pushes wait until the merchant opens the app again.
    needs_reauth_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reauth_reason: Mapped[str | None] = mapped_column(Text)
    installed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class OAuthState(TimestampMixin, Base):
    """A `state` handed to Shopify's authorize page; the callback consumes it once."""

    __tablename__ = "shopify_oauth_states"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )

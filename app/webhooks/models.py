"""Webhook subscriptions and the outbox of their deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, BigIntPK, UTCDateTime

PENDING_SQL = "status = 'pending'"


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"
    __table_args__ = (Index("ix_webhook_subscriptions_provider_id", "provider_id"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2048))
    # The event types subscribed to as ",created,accepted," (delimited on both sides so one
    # portable ``LIKE`` matches a type in SQL, in the jobs' set-based INSERT ... SELECT as in
    # a request); null means every type.
    event_types: Mapped[str | None] = mapped_column(String(1000))
    # ``whsec_`` + base64 of the key: the service must sign with it, so it is kept as given.
    secret: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event to send to one subscription: the outbox row, written in the event's own
    transaction, so it exists exactly when the event does."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The worker reads only what is pending, by when it is due.
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            "id",
            sqlite_where=text(PENDING_SQL),
            postgresql_where=text(PENDING_SQL),
        ),
        # Ordering per referral: a delivery waits while an earlier one for the same
        # subscription and referral is still pending.
        Index(
            "ix_webhook_deliveries_pending_order",
            "subscription_id",
            "referral_id",
            "event_id",
            sqlite_where=text(PENDING_SQL),
            postgresql_where=text(PENDING_SQL),
        ),
        Index("ix_webhook_deliveries_subscription_id_id", "subscription_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    # The event announced: a foreign key only; its data is read through referrals.service.
    event_id: Mapped[int] = mapped_column(ForeignKey("referral_events.id"))
    referral_id: Mapped[str] = mapped_column(String(26))
    event_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    # A fixed word for what went wrong ("timeout", "connection", "address"): never the
    # receiver's answer, which we do not control.
    last_error: Mapped[str | None] = mapped_column(String(32))
    # On the service clock: the backoff and the 24-hour window are the service's rules.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # In real time: a worker's hold on the delivery while it sends. If the worker dies, the
    # lease runs out and another worker sends it again (at least once).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(32))

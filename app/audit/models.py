"""The read audit (domain.md §10, GEN 71): who was shown which participant, when, and how."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, BigIntPK, UTCDateTime


class ReferralRead(Base):
    """One referral shown in one response. A response's rows share ``read_id`` and are
    written by one multi-row INSERT, so a list of 50 referrals costs one statement, and
    listing by referral is an index lookup on both databases."""

    __tablename__ = "referral_reads"
    __table_args__ = (
        Index("ix_referral_reads_referral_id_read_id", "referral_id", "read_id"),
        Index("ix_referral_reads_read_id_id", "read_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # A ULID per response: time-ordered, so pages follow recording order.
    read_id: Mapped[str] = mapped_column(String(26))
    # No foreign key: the audit outlives nothing it names, and costs no extra lookup.
    referral_id: Mapped[str] = mapped_column(String(26))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_sub: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_provider_id: Mapped[str | None] = mapped_column(String(40))
    operation: Mapped[str] = mapped_column(String(40))

"""Claims for outcome payments and their append-only history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.claims.transitions import LIVE_CLAIMS_SQL
from app.core.database import Base, BigIntPK, UTCDateTime


class Claim(Base):
    __tablename__ = "claims"
    __table_args__ = (
        # One live claim of each type per referral (domain.md §8), held by the database so
        # that two racing claims cannot both get through.
        Index(
            "uq_claims_live_referral_type",
            "referral_id",
            "claim_type",
            unique=True,
            sqlite_where=text(LIVE_CLAIMS_SQL),
            postgresql_where=text(LIVE_CLAIMS_SQL),
        ),
        Index("ix_claims_provider_id_id", "provider_id", "id"),
        Index("ix_claims_status", "status"),
        Index("ix_claims_payment_run_id", "payment_run_id"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"))
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"))
    provider_id: Mapped[str] = mapped_column(String(40))
    programme: Mapped[str] = mapped_column(String(8))
    claim_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    amount_pence: Mapped[int] = mapped_column(BigInteger)
    job_start_date: Mapped[date | None] = mapped_column(Date)
    hours_per_week: Mapped[int | None] = mapped_column(Integer)
    basis: Mapped[str | None] = mapped_column(String(20))
    weeks_in_work_last_30: Mapped[int | None] = mapped_column(Integer)
    evidence_reference: Mapped[str | None] = mapped_column(String(100))
    submitted_by: Mapped[str] = mapped_column(String(200))
    rejection_reason: Mapped[str | None] = mapped_column(String(2000))
    payment_run_id: Mapped[str | None] = mapped_column(String(26))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))

    __mapper_args__ = {"version_id_col": version}


class ClaimEvent(Base):
    __tablename__ = "claim_events"
    __table_args__ = (Index("ix_claim_events_claim_id_id", "claim_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"))
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_sub: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_provider_id: Mapped[str | None] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

"""A provider's contract to deliver one programme for a period, with its price schedule."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime


class Contract(Base):
    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint("end_date >= start_date", name="period"),
        CheckConstraint("monthly_service_fee_pence >= 0", name="fee_not_negative"),
        Index("ix_contracts_provider_programme", "provider_id", "programme", "start_date"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(40))
    programme: Mapped[str] = mapped_column(ForeignKey("programmes.code"))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    # Money is integer pence (domain.md §8).
    monthly_service_fee_pence: Mapped[int] = mapped_column(BigInteger)
    attachment_fee_pence: Mapped[int | None] = mapped_column(BigInteger)
    job_outcome_fee_pence: Mapped[int | None] = mapped_column(BigInteger)
    sustainment_fee_pence: Mapped[int | None] = mapped_column(BigInteger)
    # JFS 1.33: after this day the contract's closed referrals are erased (the retention job).
    records_retention_end_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

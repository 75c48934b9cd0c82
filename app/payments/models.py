"""Payment runs and their lines. Each claim, each recovery and each contract's monthly fee is
on one line only, held by unique indexes, so racing runs cannot pay anything twice. A
service-fee line's ``month`` is the fee month it pays (``fee_month``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, BigIntPK, UTCDateTime


class PaymentRun(Base):
    __tablename__ = "payment_runs"
    __table_args__ = (Index("ix_payment_runs_month", "month"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    total_pence: Mapped[int] = mapped_column(BigInteger)
    # JFS 6.06: fees this run held because their month was not final yet, with the day each
    # becomes payable (a list of {contract_id, fee_month, payable_from}).
    held_fees: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class PaymentLine(Base):
    __tablename__ = "payment_lines"
    __table_args__ = (
        Index(
            "uq_payment_lines_claim_id",
            "claim_id",
            unique=True,
            sqlite_where=text("kind = 'claim'"),
            postgresql_where=text("kind = 'claim'"),
        ),
        Index(
            "uq_payment_lines_contract_month",
            "contract_id",
            "month",
            unique=True,
            sqlite_where=text("kind = 'service_fee'"),
            postgresql_where=text("kind = 'service_fee'"),
        ),
        # A paid claim voided by a back-out is recovered once (domain.md §8).
        Index(
            "uq_payment_lines_recovery_claim_id",
            "claim_id",
            unique=True,
            sqlite_where=text("kind = 'recovery'"),
            postgresql_where=text("kind = 'recovery'"),
        ),
        Index("ix_payment_lines_run_id_id", "run_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("payment_runs.id"))
    kind: Mapped[str] = mapped_column(String(16))
    claim_id: Mapped[str | None] = mapped_column(ForeignKey("claims.id"))
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"))
    provider_id: Mapped[str] = mapped_column(String(40))
    month: Mapped[str] = mapped_column(String(7))
    amount_pence: Mapped[int] = mapped_column(BigInteger)
    deduction_pence: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    # A service-fee line: the CSS figures the fee was paid on, so it can be explained later
    # (JFS 6.09: a paid month is never reopened).
    figures: Mapped[dict[str, Any] | None] = mapped_column(JSON)

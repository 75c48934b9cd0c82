"""Stored Idempotency-Keys (api-contract.md, Writes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, BigIntPK, UTCDateTime


class IdempotencyRecord(Base):
    """A POST's Idempotency-Key, per caller, with the first response (api-contract.md Writes)."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("caller", "key"),
        Index("ix_idempotency_records_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    caller: Mapped[str] = mapped_column(String(300))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # Sealed (app.idempotency.sealing): base64 of AES-GCM nonce and ciphertext.
    response_body: Mapped[str | None] = mapped_column(Text)
    # The operation that answered, for the read audit of a replay (GEN 71: a replay shows the
    # participants of ``IdempotencyReferral`` again, and is recorded like the first answer).
    operation: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdempotencyReferral(Base):
    """A referral whose personal data a stored answer shows, so that erasure can find the
    answer and delete it (domain.md §10)."""

    __tablename__ = "idempotency_referrals"
    __table_args__ = (Index("ix_idempotency_referrals_referral_id", "referral_id"),)

    record_id: Mapped[int] = mapped_column(
        ForeignKey("idempotency_records.id", ondelete="CASCADE"), primary_key=True
    )
    referral_id: Mapped[str] = mapped_column(String(26), primary_key=True)

"""Referrals and their append-only history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, BigIntPK, UTCDateTime
from app.referrals.states import ReferralAction, ReferralStatus
from app.referrals.transitions import TRANSITIONS


def status_in(statuses: frozenset[ReferralStatus]) -> str:
    """A predicate on ``status`` for a partial index, in the states' declared order: the text
    the migrations created, which ``alembic check`` and the migration tests compare."""
    names = [f"'{s}'" for s in ReferralStatus if s in statuses]
    return f"status = {names[0]}" if len(names) == 1 else f"status IN ({', '.join(names)})"


# The partial indexes' predicates, from the states and the transition table (domain.md §4).
OPEN_STATUSES_SQL = status_in(frozenset(s for s in ReferralStatus if s.is_open))
AUTO_DNA_STATUSES_SQL = status_in(TRANSITIONS[ReferralAction.auto_dna].sources)
AUTO_END_STATUSES_SQL = status_in(TRANSITIONS[ReferralAction.auto_end].sources)


class Referral(Base):
    __tablename__ = "referrals"
    __table_args__ = (
        # Open-referral and re-referral checks look a participant up by the digest of their
        # NINO and programme (domain.md §10: the NINO itself may be erased).
        Index("ix_referrals_nino_digest_programme", "nino_digest", "programme"),
        # JFS 5.19: one open referral per participant and programme, enforced by the database
        # so that two concurrent referrals cannot both get through.
        Index(
            "uq_referrals_open_participation",
            "nino_digest",
            "programme",
            unique=True,
            sqlite_where=text(OPEN_STATUSES_SQL),
            postgresql_where=text(OPEN_STATUSES_SQL),
        ),
        Index("ix_referrals_provider_id_id", "provider_id", "id"),
        Index("ix_referrals_status_referral_date", "status", "referral_date"),
        # Service-credit cohorts: a contract's referrals by referral date.
        Index("ix_referrals_contract_id_referral_date", "contract_id", "referral_date"),
        # The daily jobs read only what is due: small partial indexes on the deadlines.
        Index(
            "ix_referrals_auto_dna_due",
            "auto_dna_on",
            "id",
            sqlite_where=text(AUTO_DNA_STATUSES_SQL),
            postgresql_where=text(AUTO_DNA_STATUSES_SQL),
        ),
        Index(
            "ix_referrals_auto_end_due",
            "auto_end_on",
            "id",
            sqlite_where=text(AUTO_END_STATUSES_SQL),
            postgresql_where=text(AUTO_END_STATUSES_SQL),
        ),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    programme: Mapped[str] = mapped_column(ForeignKey("programmes.code"))
    provider_id: Mapped[str] = mapped_column(String(40))
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"))
    status: Mapped[str] = mapped_column(String(16))
    # HMAC of the NINO (app.referrals.digests); the NINO itself is only in ``participant``.
    nino_digest: Mapped[str] = mapped_column(String(64))
    referral_date: Mapped[date] = mapped_column(Date)
    acknowledgement_due: Mapped[date] = mapped_column(Date)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    start_date: Mapped[date | None] = mapped_column(Date)
    # JFS 3.40: the day the auto-DNA job closes the referral if nobody has (referral date +
    # the programme's auto-DNA days). JFS 5.08: the day the auto-end job ends a started one
    # (start date + the programme's allotted days); null while not started.
    auto_dna_on: Mapped[date] = mapped_column(Date)
    auto_end_on: Mapped[date | None] = mapped_column(Date)
    # Customer service standards (JFS 7.44): CSS 1, the initial meeting by this day; CSS 2,
    # a start, DNA or DNS recorded by this day (null where the programme has no such CSS);
    # and the UK day the provider first recorded one.
    initial_meeting_due: Mapped[date | None] = mapped_column(Date)
    outcome_recorded_due: Mapped[date | None] = mapped_column(Date)
    outcome_recorded_on: Mapped[date | None] = mapped_column(Date)
    initial_meeting_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    end_code: Mapped[int | None] = mapped_column(Integer)
    last_engagement_date: Mapped[date | None] = mapped_column(Date)
    policy_reference: Mapped[str | None] = mapped_column(String(100))
    provider_reference: Mapped[str | None] = mapped_column(String(100))
    rejection_reason: Mapped[str | None] = mapped_column(String(16))
    cancellation_reason: Mapped[str | None] = mapped_column(String(16))
    closed_by: Mapped[str | None] = mapped_column(String(16))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SES 3.15, JFS 3.37: set when POST backs out a start, cleared by the cancel that follows.
    start_backed_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    re_referral: Mapped[bool] = mapped_column(Boolean, default=False)
    # The personal data (SES 3.33). All null once erased (GEN 136, domain.md §10), the MAPPA
    # flag included: whether someone is a MAPPA case is itself sensitive.
    mappa: Mapped[bool | None] = mapped_column(Boolean, default=False)
    participant: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    markers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))

    # Every UPDATE is conditional on the version read: a lost race changes nothing.
    __mapper_args__ = {"version_id_col": version}


class ReferralEvent(Base):
    """One change of a referral. Append-only: never updated, never deleted."""

    __tablename__ = "referral_events"
    __table_args__ = (
        Index("ix_referral_events_referral_id_id", "referral_id", "id"),
        # The change feed reads in (txid, id) order, per provider or for everyone.
        Index("ix_referral_events_txid_id", "txid", "id"),
        Index("ix_referral_events_provider_id_txid_id", "provider_id", "txid", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # PostgreSQL: the writing transaction's id, so the feed can hold back events of
    # transactions still in flight. SQLite serialises writers, so there it is 0.
    txid: Mapped[int] = mapped_column(BigInteger)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"))
    provider_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_sub: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_provider_id: Mapped[str | None] = mapped_column(String(40))
    referral_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


# The columns a set-based ``INSERT ... SELECT`` of events fills (the jobs, erasure).
EVENT_COLUMNS = [
    "txid",
    "referral_id",
    "provider_id",
    "type",
    "occurred_at",
    "actor_sub",
    "actor_role",
    "actor_provider_id",
    "referral_version",
    "status",
    "data",
]

"""Programmes as reference data (domain.md §7): one row per programme, seeded by migration."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base


class Programme(Base):
    __tablename__ = "programmes"
    # The catalogue is seeded by migration (0001, 0005), not written by requests: the tests'
    # table cleaning keeps it.
    __table_args__ = {"info": {"reference_data": True}}

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # JFS 3.07: acknowledge within N working days, the day of receipt being day 1.
    acknowledge_working_days: Mapped[int] = mapped_column(Integer)
    # CSS 1 (JFS 7.44): initial meeting within N working days of the referral date.
    initial_meeting_working_days: Mapped[int | None] = mapped_column(Integer)
    # CSS 2: start or outcome recorded within N working days of the referral date.
    outcome_recorded_working_days: Mapped[int | None] = mapped_column(Integer)
    # JFS 3.40: Did Not Attend after N calendar days without a start.
    auto_dna_days: Mapped[int] = mapped_column(Integer)
    # JFS 5.08: allotted time in calendar days, then end code 45, counted from the start date
    # or, for CWP, from the original referral date (HTW 115, 159, 162).
    allotted_days: Mapped[int] = mapped_column(Integer)
    allotted_from: Mapped[str] = mapped_column(String(16), server_default=text("'start_date'"))
    # HTW 70: while a referral to this programme is open, none to other provision.
    exclusive: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # JFS 5.16, 1.23: someone who reached the maximum duration may not be re-referred.
    max_duration_working_days: Mapped[int | None] = mapped_column(Integer)
    # JFS 3.42, 5.16: how many times someone who started may be referred again.
    max_re_referrals: Mapped[int] = mapped_column(Integer)
    # GEN 16: which funding elements the programme pays.
    funds_service_fee: Mapped[bool] = mapped_column(Boolean)
    funds_attachment: Mapped[bool] = mapped_column(Boolean)
    funds_job_outcome: Mapped[bool] = mapped_column(Boolean)
    funds_sustainment: Mapped[bool] = mapped_column(Boolean)
    job_outcome_min_hours: Mapped[int | None] = mapped_column(Integer)

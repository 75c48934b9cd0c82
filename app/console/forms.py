"""Forms built from the API's own request bodies: the same pydantic models validate what a
person types as what a CRM sends, so the console adds no second copy of any input rule."""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.core.problems import ProblemError
from app.referrals.schemas import (
    BackOutBody,
    CancelBody,
    DidNotAttendBody,
    DidNotStartBody,
    EndBody,
    RejectBody,
    StartBody,
)
from app.referrals.states import SYSTEM_ONLY_END_CODES, ReferralAction

MAX_FORM_BYTES = 64 * 1024

# The body each action takes, as its API endpoint does (tests/console check they agree).
ACTION_BODIES: dict[ReferralAction, type[BaseModel] | None] = {
    ReferralAction.acknowledge: None,
    ReferralAction.accept: None,
    ReferralAction.reject: RejectBody,
    ReferralAction.cancel: CancelBody,
    ReferralAction.did_not_attend: DidNotAttendBody,
    ReferralAction.did_not_start: DidNotStartBody,
    ReferralAction.start: StartBody,
    ReferralAction.end: EndBody,
    ReferralAction.back_out: BackOutBody,
}

ACTION_TITLES: dict[ReferralAction, str] = {
    ReferralAction.acknowledge: "Acknowledge the referral",
    ReferralAction.accept: "Accept the referral",
    ReferralAction.reject: "Reject the referral",
    ReferralAction.cancel: "Cancel the referral",
    ReferralAction.did_not_attend: "Record did not attend",
    ReferralAction.did_not_start: "Record did not start",
    ReferralAction.start: "Record the start",
    ReferralAction.end: "Record the end",
    ReferralAction.back_out: "Back out the start",
}

# Values the service sets by itself are not offered (JFS 5.08: code 45 is the system's).
_NOT_OFFERED: frozenset[object] = frozenset(SYSTEM_ONLY_END_CODES)

_LONG_TEXT = frozenset({"note", "reason"})

Kind = Literal["radios", "date", "text", "textarea"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    label: str
    kind: Kind
    required: bool
    options: list[tuple[str, str]] = field(default_factory=list)
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class FormError:
    field: str | None
    href: str | None
    text: str


def _label(name: str) -> str:
    return (name[:1].upper() + name[1:]).replace("_", " ")


def _option_label(member: enum.Enum) -> str:
    words = member.name.replace("_", " ")
    if isinstance(member.value, int):
        return f"{member.value}: {words[:1].upper()}{words[1:]}"
    return words[:1].upper() + words[1:]


def _base_type(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def fields_of(model: type[BaseModel] | None) -> list[FieldSpec]:
    if model is None:
        return []
    specs = []
    for name, info in model.model_fields.items():
        base = _base_type(info.annotation)
        label, hint, required = _label(name), info.description, info.is_required()
        if isinstance(base, type) and issubclass(base, enum.Enum):
            options = [(str(m.value), _option_label(m)) for m in base if m not in _NOT_OFFERED]
            specs.append(FieldSpec(name, label, "radios", required, options, hint))
        elif base is date:
            specs.append(FieldSpec(name, label, "date", required, hint=hint))
        elif name in _LONG_TEXT:
            specs.append(FieldSpec(name, label, "textarea", required, hint=hint))
        else:
            specs.append(FieldSpec(name, label, "text", required, hint=hint))
    return specs


async def form_fields(request: Request) -> dict[str, str]:
    """The submitted ``application/x-www-form-urlencoded`` fields (first value of each).

    Read from the raw body the boundary middleware kept: it stands in for any body that is
    not JSON before the app sees it."""
    raw: bytes | None = getattr(request.state, "raw_body", None)
    if raw is None:
        raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(
        raw.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=100
    )
    return {k: v[0] for k, v in parsed.items() if v}


def _date_value(form: dict[str, str], name: str) -> str | None:
    parts = [form.get(f"{name}-{p}", "").strip() for p in ("year", "month", "day")]
    if not any(parts):
        return None
    year, month, day = parts
    if not (year.isdigit() and month.isdigit() and day.isdigit()):
        return "invalid"
    return f"{int(year):04d}-{int(month):02d}-{int(day):02d}"


def _href(spec: FieldSpec, prefix: str) -> str:
    # GOV.UK: a radios group's first input has the group's id; a date input's first is -day.
    return f"#{prefix}{spec.name}-day" if spec.kind == "date" else f"#{prefix}{spec.name}"


def parse_body(
    model: type[BaseModel] | None, form: dict[str, str], *, id_prefix: str = ""
) -> tuple[BaseModel | None, list[FormError]]:
    """The action's body from the form, or the errors to show beside the fields."""
    if model is None:
        return None, []
    specs = {s.name: s for s in fields_of(model)}
    data: dict[str, Any] = {}
    for spec in specs.values():
        value = (
            _date_value(form, spec.name)
            if spec.kind == "date"
            else (form.get(spec.name) or "").strip() or None
        )
        if value is not None:
            data[spec.name] = value
    try:
        return model.model_validate(data), []
    except ValidationError as error:
        errors = []
        for item in error.errors():
            name = str(item["loc"][0]) if item["loc"] else ""
            found = specs.get(name)
            if found is None:
                errors.append(FormError(None, None, "The form could not be read. Try again."))
                continue
            spec = found
            if item["type"] == "missing":
                verb = "Choose" if spec.kind == "radios" else "Enter"
                text = f"{verb} {spec.label.lower()}"
            elif spec.kind == "date":
                text = f"{spec.label} must be a real date"
            else:
                # pydantic's message only, never the input (it may be personal data).
                text = f"{spec.label}: {item['msg']}"
            errors.append(FormError(name, _href(spec, id_prefix), text))
        return None, errors


def problem_error(
    model: type[BaseModel] | None, problem: ProblemError, id_prefix: str = ""
) -> FormError:
    """A refusal by the service as an error summary entry; a date rule's detail names its
    field ("start_date is after ..."), so that error links to, and shows beside, the field."""
    for spec in fields_of(model):
        if problem.detail.startswith(f"{spec.name} "):
            text = spec.label + problem.detail.removeprefix(spec.name)
            return FormError(spec.name, _href(spec, id_prefix), text)
    return FormError(None, None, problem.detail)

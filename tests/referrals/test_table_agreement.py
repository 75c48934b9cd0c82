"""The transition table, the routes, the jobs, the partial indexes and the OpenAPI document
agree (app/referrals/transitions.py is the single source; style.md, "A table is only the
single source if nothing else is keyed by action").

No request is sent: the routes are read from the app itself, the document from the app and
from ``openapi/openapi.json``."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import Index
from starlette.routing import BaseRoute

from app.core.auth import Admission
from app.core.clock import Clock
from app.core.problems import PROBLEM_CODES_KEY, problem_responses
from app.jobs.service import SYSTEM_CLOSES, Job
from app.referrals import models
from app.referrals.models import Referral
from app.referrals.repository import set_based_change
from app.referrals.states import ActorRole, ReferralAction, ReferralStatus
from app.referrals.transitions import (
    HTTP_ACTIONS,
    SYSTEM_TRANSITIONS,
    TRANSITIONS,
    Transition,
    due_system_action,
)

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
ACTION_PATH = re.compile(r"^/v1/referrals/\{id\}/(?P<name>[a-z-]+)$")
# POSTs under a referral that are not state transitions: erasure removes personal data and
# leaves the status as it is (GEN 136, domain.md §10).
NOT_TRANSITIONS = {"erasure"}


def _routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route, into the routers the app includes (the app adds no prefix)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _routes(included.routes)


def _action_routes(app: FastAPI) -> dict[str, list[APIRoute]]:
    found: dict[str, list[APIRoute]] = {}
    for route in _routes(app.routes):
        if "POST" in route.methods:
            match = ACTION_PATH.match(route.path)
            if match and match["name"] not in NOT_TRANSITIONS:
                found.setdefault(match["name"], []).append(route)
    return found


def _admitted(route: APIRoute) -> tuple[frozenset[Any], frozenset[str]]:
    """The roles and scopes the route's own role dependency (``admission``) admits."""
    (dependency,) = route.dependencies
    assert dependency.dependency is not None
    admit = inspect.getclosurevars(dependency.dependency).nonlocals["admit"]
    assert isinstance(admit, Admission)
    return frozenset(str(r) for r in admit.roles), admit.scopes


def test_every_action_route_is_a_row_and_every_row_one_route(app: FastAPI) -> None:
    routes = _action_routes(app)
    assert set(routes) == {a.value for a in HTTP_ACTIONS}
    for action in HTTP_ACTIONS:
        (route,) = routes[action.value]
        transition = TRANSITIONS[action]
        assert transition.endpoint is not None
        assert route.operation_id == transition.endpoint.operation_id
        assert route.summary == transition.endpoint.summary
        assert route.description == transition.description
        assert route.responses == problem_responses(*transition.problems)
        assert _admitted(route) == (
            {str(transition.actor)},
            set() if transition.scope is None else {str(transition.scope)},
        )
        (body,) = route.dependant.body_params
        assert body.field_info.annotation in (
            transition.endpoint.body,
            transition.endpoint.body | None,
        ), action


def test_the_system_rows_have_no_route_and_every_other_row_has_one() -> None:
    for transition in TRANSITIONS.values():
        system = transition.actor is ActorRole.system
        assert (transition.endpoint is None) is system, transition.action
        assert (transition.deadline is not None) is system, transition.action
        assert (transition.role is None) is system, transition.action


def test_each_rows_guards_are_among_its_documented_problems() -> None:
    """A time rule or segregation of duties the row applies is a problem its endpoint
    declares, so the document never hides an answer the action can give."""
    for action in HTTP_ACTIONS:
        transition = TRANSITIONS[action]
        problems = set(transition.problems)
        assert {rule.problem for rule in transition.time_rules} <= problems, action
        if transition.segregated:
            assert any(p.code == "segregation-of-duties" for p in problems), action


@pytest.mark.parametrize("document_source", ["served", "committed"])
async def test_the_document_says_what_the_table_says(app: FastAPI, document_source: str) -> None:
    document = app.openapi() if document_source == "served" else json.loads(COMMITTED.read_text())
    for action in HTTP_ACTIONS:
        transition = TRANSITIONS[action]
        assert transition.endpoint is not None
        operation = document["paths"][f"/v1/referrals/{{id}}/{action.value}"]["post"]
        assert operation["operationId"] == transition.endpoint.operation_id
        assert operation["summary"] == transition.endpoint.summary
        assert operation["description"] == transition.description
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{transition.endpoint.body.__name__}"}
        for status, declared in problem_responses(*transition.problems).items():
            description = operation["responses"][str(status)]["description"]
            for code in declared[PROBLEM_CODES_KEY]:
                assert f"`{code}`" in description, (action, status, code)
    actions = [
        match["name"]
        for path, item in document["paths"].items()
        if "post" in item
        and (match := ACTION_PATH.match(path))
        and match["name"] not in NOT_TRANSITIONS
    ]
    assert sorted(actions) == sorted(a.value for a in HTTP_ACTIONS)


# --- the jobs ------------------------------------------------------------------------------


def test_the_jobs_are_the_system_rows() -> None:
    """Every job but retention closes referrals by one system row, named after its action;
    the batch's SQL reads that row (``referrals.repository.close_due_batch``)."""
    assert set(SYSTEM_CLOSES) == set(Job) - {Job.retention}
    assert sorted(SYSTEM_CLOSES.values()) == sorted(t.action for t in SYSTEM_TRANSITIONS)
    for job, action in SYSTEM_CLOSES.items():
        assert job.value == action.value
        assert TRANSITIONS[action].deadline is not None


@pytest.mark.parametrize("transition", SYSTEM_TRANSITIONS, ids=lambda t: str(t.action))
def test_a_job_writes_what_a_read_settles(transition: Transition) -> None:
    """The daily job's set-based change is the row's effect, exactly as ``settle_deadlines``
    applies it to one referral read after its deadline; only the column a value is read
    from stands for that referral's value."""
    clock = Clock.at(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    due = date(2026, 5, 1)
    facts = SimpleNamespace(
        status=next(iter(transition.sources)),
        auto_dna_on=due,
        auto_end_on=due,
        start_date=due,
        start_backed_out_at=None,
    )
    one = transition.effect(facts, None, None, clock)  # type: ignore[arg-type]
    set_based = set_based_change(transition, clock, clock.today)
    assert set_based.event_data == one.event_data
    assert set_based.fields.keys() == one.fields.keys()
    for name, value in set_based.fields.items():
        if value is getattr(Referral, str(transition.deadline), None):
            assert one.fields[name] == due, name
        else:
            assert value == one.fields[name], name
    assert one.fields["status"] is transition.target
    assert due_system_action(facts, clock.today) is transition.action  # type: ignore[arg-type]


def test_a_job_run_for_an_earlier_day_says_so_in_its_events() -> None:
    clock = Clock.at(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    change = set_based_change(TRANSITIONS[ReferralAction.auto_dna], clock, date(2026, 5, 1))
    assert change.event_data["as_of"] == "2026-05-01"


# --- the status lists in SQL ---------------------------------------------------------------


def _statuses(predicate: str) -> set[str]:
    match = re.fullmatch(r"status (?:= '(\w+)'|IN \(((?:'\w+'(?:, )?)+)\))", predicate)
    assert match, predicate
    return set(re.findall(r"\w+", match[1] or match[2]))


def _predicate(index: Index, dialect: str) -> str:
    return str(index.dialect_options[dialect]["where"])


def test_the_sql_status_lists_are_the_tables_sets() -> None:
    assert _statuses(models.OPEN_STATUSES_SQL) == {s.value for s in ReferralStatus if s.is_open}
    assert _statuses(models.AUTO_DNA_STATUSES_SQL) == {
        s.value for s in TRANSITIONS[ReferralAction.auto_dna].sources
    }
    assert _statuses(models.AUTO_END_STATUSES_SQL) == {
        s.value for s in TRANSITIONS[ReferralAction.auto_end].sources
    }
    indexes = {i.name: i for i in Referral.__table__.indexes}  # type: ignore[attr-defined]
    expected = {"uq_referrals_open_participation": models.OPEN_STATUSES_SQL}
    for transition in SYSTEM_TRANSITIONS:
        name = f"ix_referrals_{transition.action.value.replace('-', '_')}_due"
        expected[name] = models.status_in(transition.sources)
        assert [c.name for c in indexes[name].columns] == [transition.deadline, "id"]
    for name, predicate in expected.items():
        for dialect in ("postgresql", "sqlite"):
            assert _predicate(indexes[name], dialect) == predicate, (name, dialect)

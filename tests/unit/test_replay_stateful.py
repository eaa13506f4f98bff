"""Random command sequences against a model of the table (Hypothesis stateful testing): after
every step the stored state equals the model, equals the replay of the audit trail, and every
chain verifies. Refusals are expected exactly where the table says."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from second_opinion import connect
from tests.conftest import EXAMPLES, PATHS, migrated_sqlite, walk
from tests.soak import examples
from workflow import (
    DEFINITION,
    Actor,
    ConcurrentUpdate,
    FixedClock,
    GuardRefused,
    InvalidTransition,
    PermissionDenied,
    SecondOpinionError,
    UnknownEvent,
    ValidationError,
)
from workflow.audit.chain import replay, replay_facts

EVENTS = [*DEFINITION.event_names, "teleport"]


def expected_refusal(state, version, event, role, reason, data, expect):
    """What the tables say should happen before guards, in the order the service checks;
    None means: accepted, or refused by one of the event's named guards."""
    if expect is not None and expect != version:
        return ConcurrentUpdate
    definition = DEFINITION.event(event)
    if definition is None:
        return UnknownEvent
    if not DEFINITION.may(role, event):
        return PermissionDenied
    if state not in definition.sources:
        return InvalidTransition
    if definition.reason_required and not reason:
        return ValidationError
    if any(key not in data for key in definition.required_data):
        return ValidationError
    return None


class CaseLifeCycle(RuleBasedStateMachine):
    url = "memory://"
    cases = Bundle("cases")

    @initialize()
    def start(self) -> None:
        self.tmp = None
        url = self.url
        if url == "sqlite":
            self.tmp = tempfile.mkdtemp()
            url = migrated_sqlite(Path(self.tmp) / "cases.sqlite3")
        self.clock = FixedClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
        self.service = connect(url, clock=self.clock)
        self.model: dict[str, dict] = {}

    def teardown(self) -> None:
        if hasattr(self, "service"):
            self.service.close()
        if getattr(self, "tmp", None):
            shutil.rmtree(self.tmp)

    @rule(target=cases, ref=st.from_regex(r"PX-[0-9]{1,4}", fullmatch=True))
    def open(self, ref: str) -> str:
        case_id = self.service.open_case(ref, actor=Actor("desk-1", "coordinator")).case_id
        self.model[case_id] = {"state": DEFINITION.initial, "version": 1, "records": 1}
        return case_id

    @rule(target=cases, state=st.sampled_from(sorted(PATHS)))
    def open_and_walk(self, state: str) -> str:
        """A case walked along the happy path, so that later random commands meet real facts."""
        case_id = self.service.open_case("PX-W", actor=Actor("desk-1", "coordinator")).case_id
        walk(self.service, case_id, state)
        steps = len(PATHS[state])
        self.model[case_id] = {"state": state, "version": 1 + steps, "records": 1 + steps}
        return case_id

    @rule(
        case_id=cases,
        event=st.sampled_from(EVENTS),
        role=st.sampled_from(DEFINITION.role_names),
        reason=st.sampled_from([None, "patient's wish"]),
        with_data=st.booleans(),
        expect_offset=st.sampled_from([None, 0, -1, 1]),
    )
    def fire(self, case_id, event, role, reason, with_data, expect_offset) -> None:
        self.clock.advance(timedelta(minutes=1))
        model = self.model[case_id]
        expect = None if expect_offset is None else model["version"] + expect_offset
        data = EXAMPLES[event][2] if with_data and event in EXAMPLES else {}
        refusal = expected_refusal(model["state"], model["version"], event, role, reason, data, expect)
        try:
            receipt = self.service.fire(
                case_id, event, actor=Actor("actor-1", role), reason=reason, data=data, expect_version=expect
            )
        except GuardRefused as exc:
            assert refusal is None, f"guard {exc.guard} refused, but the table says {refusal}"
            assert exc.guard in {g.name for g in DEFINITION.event(event).guards}
        except SecondOpinionError as exc:
            assert refusal is not None and type(exc) is refusal, f"got {exc!r}, table says {refusal}"
        else:
            assert refusal is None, f"accepted, table says {refusal}"
            model["state"] = DEFINITION.destination(DEFINITION.event(event), model["state"])
            model["version"] += 1
            assert (receipt.to_state, receipt.version) == (model["state"], model["version"])
        model["records"] += 1

    @invariant()
    def stored_equals_model_equals_replay(self) -> None:
        if not hasattr(self, "service"):
            return
        for case_id, model in self.model.items():
            case = self.service.case(case_id)
            assert (case.state, case.version, case.audit_count) == (model["state"], model["version"], model["records"])
            history = self.service.history(case_id)
            assert replay(history) == case.state
            assert replay_facts(history, DEFINITION) == case.facts
        assert self.service.verify().ok


# examples: the suite's few, or the long run's (SECOND_OPINION_SOAK=1, see tests/soak.py); the steps per run stay
CaseLifeCycle.TestCase.settings = settings(max_examples=examples(20, 60), stateful_step_count=30, deadline=None)
test_life_cycle_in_memory = CaseLifeCycle.TestCase


class CaseLifeCycleOnSqlite(CaseLifeCycle):
    url = "sqlite"


CaseLifeCycleOnSqlite.TestCase.settings = settings(max_examples=examples(8, 20), stateful_step_count=15, deadline=None)
test_life_cycle_on_sqlite = CaseLifeCycleOnSqlite.TestCase

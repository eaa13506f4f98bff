"""The permission table, role by event: every pair is allowed exactly when the table says so
(deny by default), a denial is audited as ``denied``, and the auditor and jobs fire nothing."""

from __future__ import annotations

import pytest

from tests.conftest import DESK, EXAMPLES, PATHS, walk
from workflow import DEFINITION, Actor, GuardRefused, PermissionDenied
from workflow.cases.definitions import OPEN_EVENT

# the first happy-path state from which each event is allowed
START = {ev.name: next(s for s in PATHS if s in ev.sources) for ev in DEFINITION.events}
PAIRS = [(role, event) for role in DEFINITION.role_names for event in DEFINITION.event_names]


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize(("role", "event"), PAIRS)
def test_role_event_pair(service, role, event):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    walk(service, case_id, START[event])
    _, reason, data = EXAMPLES[event]
    if DEFINITION.may(role, event):
        try:
            service.fire(case_id, event, actor=Actor("who-1", role), reason=reason, data=data)
        except PermissionDenied:
            pytest.fail(f"{role} may {event} by the table, but was denied")
        except GuardRefused as refused:  # a permitted role may still meet a guard (the route decides who refers)
            assert refused.guard in {g.name for g in DEFINITION.event(event).guards}
    else:
        with pytest.raises(PermissionDenied, match=f"role '{role}' may not {event}"):
            service.fire(case_id, event, actor=Actor("who-1", role), reason=reason, data=data)
        last = service.history(case_id)[-1]
        assert (last.outcome, last.event, last.actor_role) == ("denied", event, role)


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize("role", DEFINITION.role_names)
def test_who_may_open(service, role):
    if DEFINITION.may(role, OPEN_EVENT):
        assert service.open_case("PX-1", actor=Actor("who-1", role)).to_state == "requested"
    else:
        with pytest.raises(PermissionDenied):
            service.open_case("PX-1", actor=Actor("who-1", role))
        assert service.cases() == []


def test_readers_and_jobs_fire_nothing_yet():
    assert DEFINITION.permissions["auditor"] == () and DEFINITION.permissions["system"] == ()


def test_every_event_has_someone_who_may_fire_it():
    assert [e for e in DEFINITION.event_names if not DEFINITION.roles_for(e)] == []

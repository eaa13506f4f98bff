"""Request bodies and response shapes; extra fields are refused, so a typo is a 422, not a no-op."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, WithJsonSchema

from workflow.cases.definitions import DEFINITION
from workflow.feed.events import EVENT_TYPES
from workflow.service.inputs import MAX_REASON_CHARS

_STRICT = ConfigDict(extra="forbid")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def iso_8601(value: Any) -> Any:
    """Pydantic would read a number (or a numeric string) as a Unix timestamp; the API promises
    ISO 8601 with an offset, so anything else is refused here, naming the field."""
    if isinstance(value, str) and _ISO.match(value):
        return value
    raise ValueError("must be an ISO 8601 date and time with an offset, such as 2026-11-23T10:00:00+01:00")


Instant = Annotated[datetime, BeforeValidator(iso_8601)]

REF = "#/components/schemas/"
ENUMS: dict[str, tuple[tuple[str, ...], str]] = {
    "EventName": (DEFINITION.event_names, "An event of the definition table."),
    "StateName": (tuple(s.name for s in DEFINITION.states), "A state of the definition table."),
    "RouteName": (DEFINITION.route_names, "A route of the definition table."),
    "RoleName": (DEFINITION.role_names, "A role of the definition table."),
    "ChangeEventType": (tuple(EVENT_TYPES), "A type of event of the change feed (GET /events, webhooks)."),
}
"""Named enums of ``/openapi.json``, from the definition table (a new event is in the schema by
itself). Fields stay ``str`` for validation: the service refuses an unknown name with its own
problem type (``unknown-event``, ``validation-error``) naming the known ones."""


NAMED = "x-named-enum"
"""Marks a field of a named enum; :func:`second_opinion.api.spec.refine` turns the mark into a ``$ref``
(pydantic resolves a ``$ref`` it is given against its own definitions, which these are not)."""


def _named(name: str) -> Any:
    return WithJsonSchema({"type": "string", NAMED: name})


EventName = Annotated[str, _named("EventName")]
StateName = Annotated[str, _named("StateName")]
RouteName = Annotated[str, _named("RouteName")]
RoleName = Annotated[str, _named("RoleName")]
ChangeEventType = Annotated[str, _named("ChangeEventType")]
_ID = r"^[A-Za-z0-9._:-]{3,64}$"


class OpenCase(BaseModel):
    model_config = _STRICT

    patient_ref: str = Field(description="Pseudonymous patient reference (never a BSN or name).", max_length=64)
    route: RouteName = Field("domestic", description="The route of the case.", max_length=32)
    provider: str | None = Field(
        None, max_length=64,
        description="The provider the patient chose, one serving the route (GET /providers?route=...); a route "
        "one provider serves implies it. Otherwise chosen later with the event choose_provider.",
    )  # fmt: skip
    occurred_at: Instant | None = Field(None, description="When it happened, with a UTC offset; default now.")
    patient_name: SecretStr | None = Field(
        None,
        max_length=200,
        description="Write-only, optional: the patient's name, so that it can be refused wherever it is typed "
        "later (reasons, event data, X-On-Behalf-Of, Idempotency-Key). Kept only as keyed hashes of its words; "
        "never stored, echoed or logged. Needs the server's secret key, as a BSN does.",
    )


class FireEvent(BaseModel):
    model_config = _STRICT

    event: EventName = Field(description="An event of the definition table, e.g. refer.", max_length=64)
    reason: str | None = Field(None, max_length=MAX_REASON_CHARS)
    data: dict[str, Any] = Field(
        default_factory=dict, description="The event's data: /openapi.json gives each event's (FireEvent)."
    )
    occurred_at: Instant | None = None


class Coverage(BaseModel):
    model_config = _STRICT

    facts: dict[str, Any] = Field(description="Coverage facts, e.g. {\"route\": \"domestic\", ...}.")
    policy: str | None = Field(None, max_length=64, description="One policy id; all policies when absent.")


class Receipt(BaseModel):
    case_id: str
    event: str = Field(description="`open`, or an event of the definition table.")
    from_state: StateName | None
    to_state: StateName
    version: int
    seq: int
    occurred_at: str
    recorded_at: str
    replayed: bool


class DeadlineOut(BaseModel):
    id: str
    policy: str
    state: str
    calendar: str
    due_at: str | None = Field(description="UTC; null while paused.")
    due_local: str | None = Field(description="The same moment in Europe/Amsterdam.")
    next_action_at: str | None
    reminders_sent: int
    stopped_at: str | None
    explanation: dict[str, Any] = Field(description="How the due moment was counted: start, days skipped, why.")


class ProviderRef(BaseModel):
    id: str
    version: int
    name: str | None


class ChecklistItemOut(BaseModel):
    item: str
    description: str
    required_when: str | None = Field(description="The circumstance that makes it required; null: always.")
    waivable: bool
    source: str


class ContactOut(BaseModel):
    field: str
    description: str
    value: str | None = Field(description="The operator's value, else the seed's; null when neither is known.")
    value_from: str | None = Field(description="operator | seed | null.")


class ProviderOut(BaseModel):
    id: str
    version: int = Field(description="The newest version of the provider's rules (a case keeps the one it chose).")
    name: str
    description: str
    routes: list[str]
    consultation: str = Field(description="Whether the patient is seen: always | doctor_decides | never.")
    costs_team_first: bool = Field(description="Patients insured abroad contact the costs team first (003).")
    source: str
    checklist: list[ChecklistItemOut]
    contacts: list[ContactOut]


class CaseOut(BaseModel):
    id: str
    patient_ref: str
    route: RouteName
    organisation: str
    state: StateName
    version: int
    opened_at: str
    updated_at: str
    audit_count: int
    audit_head: str
    bsn_recorded: bool
    facts: dict[str, Any] = Field(
        description="What has been recorded about the case; `coverage` is the insurer's latest decision "
        "(event decide_coverage): policy, the facts decided on, outcome (covered | partly | not_covered), each "
        "reason with its seed rule, eigen risico. Earlier decisions stay in the history."
    )
    provider: ProviderRef | None = Field(description="The provider the case recorded; null until one is chosen.")
    coverage_outcome: str | None = Field(
        description="The latest coverage decision's outcome: covered | partly | not_covered; null before one."
    )
    self_paying: bool = Field(
        description="The case went ahead without a referral, the patient paying (facts.self_paying)."
    )
    allowed_events: list[EventName]
    deadlines: list[DeadlineOut] | None = None


class WorkListOut(BaseModel):
    due_at: str | None = Field(description="The case's earliest due moment of an open deadline (UTC).")
    due_local: str | None
    deadline: str | None = Field(description="The deadline it comes from (case/policy).")
    deadline_state: str | None = Field(description="running or breached.")
    working_days_late: int | None = Field(description="Past its due moment: working days since, on the "
                                          "deadline's own calendar.")  # fmt: skip
    working_days_left: int | None = Field(description="Before its due moment: working days left (0: due today).")


class WorkListCaseOut(CaseOut):
    worklist: WorkListOut | None = Field(
        None, description="On a due list only (overdue, due_within, sort=due): where the case stands."
    )


class AuditRecordOut(BaseModel):
    case_id: str
    seq: int
    event: str
    outcome: str
    from_state: StateName | None
    to_state: StateName | None
    actor_id: str
    actor_role: RoleName
    on_behalf_of: str | None
    occurred_at: str
    recorded_at: str
    idempotency_key: str | None
    payload: dict[str, Any]
    reason: str | None
    refusal: str | None
    prev_hash: str
    hash: str
    sequence: int | None = None


class AccessRecordOut(BaseModel):
    sequence: int | None
    v: int
    at: str
    actor_id: str
    actor_role: str
    organisation: str
    on_behalf_of: str | None
    kind: str
    outcome: str
    client: str | None
    case_id: str | None
    patient_ref: str | None
    case_organisation: str | None
    prev_hash: str
    hash: str
    cases: list[str] | None = Field(
        None, description="A list page (kind list, v 2): the ids of the cases it showed; absent on other records."
    )
    channel: str | None = Field(None, description="Through what the read came: api or web (null before v 3).")
    credential: str | None = Field(
        None, description="What proved the caller: a token id, or oidc:<issuer hash>:<subject> (null before v 3)."
    )


class Finding(BaseModel):
    case_id: str
    seq: int | None
    problem: str


class VerifyOut(BaseModel):
    ok: bool
    cases: int
    records: int
    findings: list[Finding]


class CountOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    calendar: str
    start: date
    end: date
    working_days: int


class Health(BaseModel):
    status: str
    detail: str | None = None


class ProblemError(BaseModel):
    field: str
    problem: str


class Problem(BaseModel):
    """RFC 9457 problem details with this API's extension fields (:mod:`second_opinion.api.problems`):
    which ones a problem carries depends on its ``type``; a client matches on ``type``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{
            "type": "urn:second-opinion:problem:invalid-transition", "title": "The event is not allowed in the "
            "case's state", "status": 409, "detail": "cannot review a case in state 'requested'",
            "instance": "/cases/so-0123456789abcdef/events", "state": "requested",
            "allowed": ["refer", "withdraw"], "request_id": "3f2c9a0e5b7d4c1a"}]},
    )  # fmt: skip

    type: str = Field(description="urn:second-opinion:problem:<slug>; the table in docs/api.md.")
    title: str
    status: int
    detail: str = Field(description="For people; its wording may change.")
    instance: str = Field(description="The path of the request.")
    field: str | None = Field(None, description="The field at fault (422), in the API's spelling.")
    errors: list[ProblemError] | None = Field(None, description="Every field at fault (422 from validation).")
    state: str | None = Field(None, description="The case's state (409).")
    allowed: list[str] | None = Field(None, description="The events the state allows (409).")
    guard: str | None = Field(None, description="The guard that refused (409 guard-refused).")
    reason: str | None = Field(None, description="Why the guard refused.")
    role: str | None = Field(None, description="The token's role (403).")
    permitted: list[str] | None = Field(None, description="The roles that may (403).")
    expected: int | str | None = Field(None, description="The version in If-Match (412).")
    actual: int | str | None = Field(None, description="The case's version now (412).")
    known: list[str] | None = Field(None, description="The known events (422 unknown-event).")
    request_id: str | None = Field(None, description="The request's id, as in the X-Request-Id response header "
                                   "and the server's log lines (docs/operations.md).")  # fmt: skip

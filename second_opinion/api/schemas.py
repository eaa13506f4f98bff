"""Request bodies and response shapes; extra fields are refused, so a typo is a 422, not a no-op."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

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
_ID = r"^[A-Za-z0-9._:-]{3,64}$"


class OpenCase(BaseModel):
    model_config = _STRICT

    patient_ref: str = Field(description="Pseudonymous patient reference (never a BSN or name).", max_length=64)
    route: str = Field("domestic", description="domestic, royal-doctors or online.", max_length=32)
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

    event: str = Field(description="An event of the definition table, e.g. refer.", max_length=64)
    reason: str | None = Field(None, max_length=MAX_REASON_CHARS)
    data: dict[str, Any] = Field(default_factory=dict, description="Event data, e.g. {\"consent\": true}.")
    occurred_at: Instant | None = None


class Coverage(BaseModel):
    model_config = _STRICT

    facts: dict[str, Any] = Field(description="Coverage facts, e.g. {\"route\": \"domestic\", ...}.")
    policy: str | None = Field(None, max_length=64, description="One policy id; all policies when absent.")


class Receipt(BaseModel):
    case_id: str
    event: str
    from_state: str | None
    to_state: str
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
    route: str
    organisation: str
    state: str
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
    allowed_events: list[str]
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
    from_state: str | None
    to_state: str | None
    actor_id: str
    actor_role: str
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

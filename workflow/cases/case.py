"""The case as the domain sees it: immutable snapshots, replaced on every change."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

DEFAULT_ORGANISATION = "local"
"""The organisation of cases opened without one (a single-team deployment, the CLI's default)."""


def new_case_id() -> str:
    """80 random bits as 16 lower-case base32 characters: short enough to type, and collision
    odds below 1e-10 even at ten million cases."""
    return "so-" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


CASE_ID_SHAPE = re.compile(r"so-[a-z2-7]{16}")
"""What :func:`new_case_id` makes, and nothing else: a request log may keep a path segment of this
shape (it is no name), where any other segment a caller typed is replaced."""


@dataclass(frozen=True)
class Actor:
    """Who issues a command: their id in the caller's system, their role, and for whom."""

    id: str
    role: str
    on_behalf_of: str | None = None
    channel: str | None = None
    """Through what the command came: ``api:<token id>``, ``web:<token id>``, ``cli:<OS user>@<host>``,
    ``worker:<host>:<pid>`` or ``embedded:<label>``; None takes the runtime's (:attr:`Runtime.channel`).
    Recorded in the audit record (encoding 2) and covered by its hash."""


@dataclass(frozen=True)
class Case:
    """One second-opinion case.

    ``version`` counts accepted transitions (1 when opened) and is what optimistic locking
    compares; ``audit_head``/``audit_count`` pin the end of the case's audit chain so that a
    removed tail record is detectable.
    """

    id: str
    patient_ref: str
    route: str
    state: str
    version: int
    opened_at: datetime
    updated_at: datetime
    audit_head: str
    audit_count: int
    facts: Mapping[str, Any] = field(default_factory=dict)
    """What has been recorded about the case (consent, checklist, ...); rebuilt by replay."""
    bsn_hash: str | None = None
    """HMAC of the patient's BSN when one was given at opening; never the BSN itself."""
    organisation: str = "local"
    """The care-coordination team that owns the case (an insurer's desk, a hospital's); who
    may see and change it is decided per organisation. Recorded at opening and never changed."""
    name_hashes: tuple[str, ...] = ()
    """Keyed hashes of the words of the patient's name when it was given at opening (see
    :func:`workflow.privacy.name_hashes`): what every later command about the case is screened
    against. Never the name itself; recorded at opening and never changed."""

    def moved(self, to_state: str, at: datetime, facts: Mapping[str, Any], head: str) -> Case:
        """The case after an accepted command whose audit record has hash ``head``."""
        return replace(
            self, state=to_state, version=self.version + 1, updated_at=at, facts=facts,
            audit_head=head, audit_count=self.audit_count + 1,
        )  # fmt: skip

    def chained(self, head: str) -> Case:
        return replace(self, audit_head=head, audit_count=self.audit_count + 1)


@dataclass(frozen=True)
class Transition:
    """A persisted state change: the case's ``version`` after it, and the audit record behind it."""

    case_id: str
    version: int
    event: str
    from_state: str | None
    to_state: str
    occurred_at: datetime
    audit_seq: int

"""second-opinion: Dutch second-opinion cases as persisted state machines.

The one import users need::

    from second_opinion import connect, Actor
    service = connect("sqlite:///cases.sqlite3")      # after `second-opinion init`
    receipt = service.open_case("PX-0001", actor=Actor("desk-7", "coordinator"))
    service.fire(receipt.case_id, "refer", actor=Actor("gp-12", "gp"))

The package ships ``py.typed``: a type checker reads these hints (``tests/embedding`` runs
``mypy --strict`` on a program that embeds it).
"""

from workflow import (
    DEFINITION,
    Actor,
    AuditIntegrityError,
    AuditRecord,
    Case,
    CaseService,
    Clock,
    ConcurrentUpdate,
    CoverageDecision,
    Finding,
    FixedClock,
    GuardRefused,
    IdempotencyConflict,
    InvalidTransition,
    MissingScope,
    PermissionDenied,
    Progress,
    Receipt,
    SecondOpinionError,
    StorageNotReady,
    SystemClock,
    UnknownCase,
    UnknownEvent,
    ValidationError,
    VerifyReport,
    decide_all,
    decide_coverage,
)

from .bootstrap import connect, init

__version__ = "0.1.0"

__all__ = [
    "DEFINITION",
    "Actor",
    "AuditIntegrityError",
    "AuditRecord",
    "Case",
    "CaseService",
    "Clock",
    "ConcurrentUpdate",
    "CoverageDecision",
    "Finding",
    "FixedClock",
    "GuardRefused",
    "IdempotencyConflict",
    "InvalidTransition",
    "MissingScope",
    "PermissionDenied",
    "Progress",
    "Receipt",
    "SecondOpinionError",
    "StorageNotReady",
    "SystemClock",
    "UnknownCase",
    "UnknownEvent",
    "ValidationError",
    "VerifyReport",
    "connect",
    "decide_all",
    "decide_coverage",
    "init",
]

"""The second-opinion domain: definitions, engine, audit chain and the service layer.

Plain Python: no I/O, no SQL, no imports from ``storage``, ``jobs`` or ``second_opinion``
(``tests/test_architecture.py`` enforces it).
"""

from .audit import AuditRecord, Finding, VerifyReport, replay, verify_case
from .case import Actor, Case, Transition
from .clock import Clock, FixedClock, SystemClock
from .coverage import CoverageDecision, decide_all, decide_coverage
from .definitions import DEFINITION, Definition
from .engine import Decision, Engine
from .errors import (
    AuditIntegrityError,
    ConcurrentUpdate,
    GuardRefused,
    IdempotencyConflict,
    InvalidTransition,
    PermissionDenied,
    SecondOpinionError,
    StorageNotReady,
    UnknownCase,
    UnknownEvent,
    ValidationError,
)
from .service import CaseService, Receipt

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
    "Decision",
    "Definition",
    "Engine",
    "Finding",
    "FixedClock",
    "GuardRefused",
    "IdempotencyConflict",
    "InvalidTransition",
    "PermissionDenied",
    "Receipt",
    "SecondOpinionError",
    "StorageNotReady",
    "SystemClock",
    "Transition",
    "UnknownCase",
    "UnknownEvent",
    "ValidationError",
    "VerifyReport",
    "decide_all",
    "decide_coverage",
    "replay",
    "verify_case",
]

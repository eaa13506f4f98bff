"""The second-opinion domain: definitions, engine, audit chain and the service layer.

Plain Python: no I/O, no SQL, no imports from ``storage``, ``jobs`` or ``second_opinion``
(``tests/test_architecture.py`` enforces it).
"""

from workflow.audit.chain import AuditRecord, Finding, VerifyReport, replay, verify_case
from workflow.cases.case import Actor, Case, Transition
from workflow.cases.definitions import DEFINITION, Definition
from workflow.cases.engine import Decision, Engine
from workflow.clock import Clock, FixedClock, SystemClock
from workflow.coverage.rules import CoverageDecision, decide_all, decide_coverage
from workflow.errors import (
    AuditIntegrityError,
    ConcurrentUpdate,
    GuardRefused,
    IdempotencyConflict,
    InvalidTransition,
    MissingScope,
    PermissionDenied,
    SecondOpinionError,
    StorageNotReady,
    UnknownCase,
    UnknownEvent,
    ValidationError,
)
from workflow.service.cases import CaseService
from workflow.service.commands import FireEvent, OpenCase
from workflow.service.progress import Progress
from workflow.service.recording import Receipt
from workflow.service.runtime import Runtime

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
    "FireEvent",
    "FixedClock",
    "GuardRefused",
    "IdempotencyConflict",
    "InvalidTransition",
    "MissingScope",
    "OpenCase",
    "PermissionDenied",
    "Progress",
    "Receipt",
    "Runtime",
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

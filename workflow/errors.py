"""Every refusal the library can give, as one hierarchy.

Callers catch :class:`SecondOpinionError` to handle anything the library refuses on purpose;
anything else escaping is a bug or an infrastructure failure (a lost database connection), and
must not be mistaken for a business answer::

    SecondOpinionError
    ├── ValidationError            bad input: names the field and what is wrong with it
    ├── UnknownCase                no case has that id
    ├── UnknownEvent               the event is not in the definition table
    ├── InvalidTransition          the event is not allowed in the case's current state
    │   └── GuardRefused           allowed in that state, but a guard of the table said no
    ├── PermissionDenied           the actor's role may not fire that event
    ├── ConcurrentUpdate           the case moved since the caller read it (optimistic locking)
    ├── IdempotencyConflict        an idempotency key reused for a different request
    ├── AuditIntegrityError        stored history cannot even be read back (see audit verify)
    ├── StorageNotReady            the database is not initialised or not at the code's schema
    ├── ConfigurationError         a setting the request needs is missing or unusable
    ├── ClockBehind                the server's clock reads earlier than the last record (NTP)
    ├── Unauthenticated            no API token, an unknown one, or a revoked one
    └── CheckpointError            a signed checkpoint or key that cannot be read or does not verify

    StorageError                   the database failed: infrastructure, never a business answer
    └── StorageUnavailable         unreachable, broken, out of time, full or read-only; a retry is safe

``storage`` turns every database driver error into one of the two at its boundary, so the CLI,
the API and the worker recognise a lost database without importing a driver.

Each error carries ``outcome``: the word the audit trail records when the refusal is written
(``rejected`` or ``denied``). Messages are complete sentences meant for the person at the
terminal; they name the offending value and what would have been accepted.
"""

from __future__ import annotations

from collections.abc import Sequence


class SecondOpinionError(Exception):
    """Root of every deliberate refusal."""

    outcome = "rejected"


class ValidationError(SecondOpinionError):
    """Input that can never be accepted as given, whatever the case's state."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"invalid {field}: {problem}")


class UnknownCase(SecondOpinionError):
    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        super().__init__(f"unknown case {case_id!r}")


class UnknownEvent(SecondOpinionError):
    def __init__(self, event: str, known: Sequence[str]) -> None:
        self.event = event
        self.known = tuple(known)
        super().__init__(f"unknown event {event!r}; known events: {', '.join(self.known)}")


class InvalidTransition(SecondOpinionError):
    """The event exists but the case's state does not allow it."""

    def __init__(self, event: str, state: str, allowed: Sequence[str], detail: str = "") -> None:
        self.event = event
        self.state = state
        self.allowed = tuple(allowed)
        options = ", ".join(self.allowed) if self.allowed else "none (the case is closed)"
        text = f"cannot {event} a case in state {state!r}; allowed there: {options}"
        super().__init__(f"{text}: {detail}" if detail else text)


class GuardRefused(InvalidTransition):
    """A guard from the definition table refused; ``guard`` names it, ``reason`` says why."""

    def __init__(self, event: str, state: str, allowed: Sequence[str], guard: str, reason: str) -> None:
        super().__init__(event, state, allowed)
        self.guard = guard
        self.reason = reason
        # the state allows the event, so listing the allowed events would only distract
        self.args = (f"cannot {event} a case in state {state!r}: guard {guard!r} refused: {reason}",)


class PermissionDenied(SecondOpinionError):
    outcome = "denied"

    def __init__(self, role: str, event: str, permitted: Sequence[str]) -> None:
        self.role = role
        self.event = event
        self.permitted = tuple(permitted)
        super().__init__(f"role {role!r} may not {event}; permitted roles: {', '.join(self.permitted) or 'none'}")


class MissingScope(PermissionDenied):
    """The token's role may do this, but the token was not given the scope for it (scopes only
    narrow what a role may do: :data:`workflow.access.tokens.SCOPES`)."""

    def __init__(self, role: str, scope: str) -> None:
        self.scope = scope
        super().__init__(role, f"do this without the token scope {scope!r}", ())
        self.args = (f"the token lacks the scope {scope!r}; create a token with it (`token create --scope {scope}`)",)


class ConcurrentUpdate(SecondOpinionError):
    def __init__(self, case_id: str, expected: int, actual: int) -> None:
        self.case_id = case_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"case {case_id} is at version {actual}, not the expected {expected}: "
            "it changed since you read it; re-read and decide again"
        )


class IdempotencyConflict(SecondOpinionError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"idempotency key {key!r} was already used for a different request; use a new key for a new request"
        )


class AuditIntegrityError(SecondOpinionError):
    """Stored history that cannot even be read back; ``audit verify`` tells the whole story."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"stored history cannot be trusted: {problem}; run `second-opinion audit verify`")


class StorageNotReady(SecondOpinionError):
    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        super().__init__(f"database {url} {problem}")


class ConfigurationError(SecondOpinionError):
    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {problem}")


class ClockBehind(SecondOpinionError):
    """The server's clock reads earlier than the last record by more than the tolerance.

    Not the caller's fault, and not recorded anywhere: a record of the refusal would carry the
    bad time, which is what is refused. ``recorded_at`` only moves forward (per case and in the
    order of storage), so that an export from a moment on misses nothing; a clock set back would
    break that, so nothing is written until the server's time is put right."""

    def __init__(self, now: str, last: str, behind_seconds: float, what: str = "record") -> None:
        self.now = now
        self.last = last
        self.behind_seconds = behind_seconds
        super().__init__(
            f"the clock reads {now}, {behind_seconds:.3f} s behind the last {what} at {last}; "
            "check the server's time (NTP)"
        )


class Unauthenticated(SecondOpinionError):
    """The caller could not be identified; says which of the three, never echoes the token."""

    outcome = "denied"

    def __init__(self, problem: str, reason: str | None = None) -> None:
        self.problem = problem
        if reason is not None:  # the class of what was wrong, for a client to act on (e.g. ``expired``)
            self.reason = reason
        super().__init__(f"not authenticated: {problem}")


class CheckpointError(SecondOpinionError):
    """A signed checkpoint, or a key to sign or check one, that cannot be read, is signed by no
    key the caller trusts, or whose signature does not hold (:mod:`workflow.audit.checkpoint`)."""

    def __init__(self, what: str, problem: str) -> None:
        self.what, self.problem = what, problem
        super().__init__(f"{what}: {problem}")


class StorageError(Exception):
    """The database failed in a way the library did not decide (a disk full, a constraint a
    foreign writer broke, a bug): not a refusal, so not a :class:`SecondOpinionError`. The driver's
    error is the ``__cause__``; the message is its first line."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class StorageUnavailable(StorageError):
    """The database could not do the work now, though it may a moment later: it could not be
    reached or the connection broke mid-request, a lock or statement timed out, no pooled
    connection came free, or it is full or read-only. Whatever was under way was rolled back
    (or, for a lost commit, either landed or not): the same request with the same idempotency key
    may simply be tried again. ``reason`` names the class of cause in a few words ("lock
    timeout", "disk full") for a log line."""

    def __init__(self, message: str, reason: str = "connection lost") -> None:
        self.reason = reason
        super().__init__(message)


def first_line(exc: BaseException) -> str:
    """An infrastructure error (a database driver's) as one line for a log or an error message:
    psycopg's messages go on with an indented hint ("\\n\\tIs the server running..."), SQLAlchemy's
    with a link. An error without a message is named by its type."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

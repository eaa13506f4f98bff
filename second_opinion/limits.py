"""Rate limits of the HTTP edge: writes and reads per token, writes per case, failed
authentications per client address. Token buckets, in process memory, with an injectable monotonic time source.

Why here and not in the service layer: a limit protects the server (the audit trail of a case
is append-only, so every refused command a flood provokes is kept for ever and read back by every
later history or FHIR read); it is no rule of the workflow. It is checked *before* a command runs,
so a command the service accepted is never dropped after the fact, and a refusal by the limit is
written nowhere (no audit record, no access record: it would be the very flood it holds back).

Each process keeps its own buckets: with several ``serve`` processes behind one address, the
effective limit is the configured one times the number of processes. That is the documented
trade-off for needing no shared store; a deployment that needs one global limit sets it at its
reverse proxy.

Nothing of the web stack is imported here: :mod:`second_opinion.bootstrap` parses the settings
without loading it.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from workflow.errors import ConfigurationError

Monotonic = Callable[[], float]

MAX_KEYS = 10_000
"""Buckets kept per limit. A key is a token id, a case id or a client address, and an attacker
can make new ones (another case id in a path, another address): past this many, buckets that have
refilled (the same as no bucket) are dropped, then the least recently used."""

_RATE = re.compile(r"^\s*(\d{1,7})\s*/\s*(\d{1,6})\s*$")
OFF = ("0", "off")


@dataclass(frozen=True)
class Rate:
    """``count`` per ``seconds``: a burst of ``count``, refilled at ``count / seconds`` a second."""

    count: int
    seconds: int

    def __post_init__(self) -> None:
        if self.count < 1 or self.seconds < 1:
            raise ValueError(f"a rate needs a count and a period of at least 1 (got {self.count}/{self.seconds})")

    @classmethod
    def parse(cls, setting: str, text: str) -> Rate | None:
        """``"120/60"`` -> 120 per 60 s; ``"0"`` or ``"off"`` -> no limit. Anything else is a
        :class:`ConfigurationError` naming ``setting``."""
        if text.strip().lower() in OFF:
            return None
        found = _RATE.match(text)
        if not found or int(found.group(1)) < 1 or int(found.group(2)) < 1:
            problem = f"must be COUNT/SECONDS such as 120/60 (both at least 1), or 0 or off (got {text!r})"
            raise ConfigurationError(setting, problem)
        return cls(int(found.group(1)), int(found.group(2)))

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}"


@dataclass
class _Bucket:
    tokens: float
    at: float


class Buckets:
    """One token bucket per key. Thread-safe: the API's sync routes run in a thread pool."""

    def __init__(self, rate: Rate, monotonic: Monotonic = time.monotonic, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.monotonic = monotonic
        self.max_keys = max_keys
        self.lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def wait(self, key: str) -> float:
        """Seconds until ``key`` has a token (0 when it has one now); takes nothing."""
        with self.lock:
            return self._wait(self._level(key, self.monotonic()))

    def take(self, key: str) -> float:
        """Take a token for ``key`` and answer 0, or take nothing and answer the seconds to wait."""
        with self.lock:
            now = self.monotonic()
            tokens = self._level(key, now)
            if tokens < 1:
                return self._wait(tokens)
            self._store(key, tokens - 1, now)
            return 0.0

    def keys_held(self) -> int:
        """How many keys have a bucket (no ``__len__``: an empty ``Buckets`` must not be falsy)."""
        return len(self._buckets)

    def _level(self, key: str, now: float) -> float:
        found = self._buckets.get(key)
        if found is None:
            return float(self.rate.count)
        refill = max(0.0, now - found.at) * self.rate.count / self.rate.seconds
        return min(float(self.rate.count), found.tokens + refill)

    def _wait(self, tokens: float) -> float:
        return 0.0 if tokens >= 1 else (1 - tokens) * self.rate.seconds / self.rate.count

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets.pop(key, None)  # re-inserted last: the dict's order is least recently used first
        if len(self._buckets) >= self.max_keys:
            self._prune(now)
        self._buckets[key] = _Bucket(tokens, now)

    def _prune(self, now: float) -> None:
        full = [k for k in self._buckets if self._level(k, now) >= self.rate.count]
        for key in full:
            del self._buckets[key]
        overflow = len(self._buckets) - self.max_keys * 9 // 10  # evict in batches, not one per request
        for key in list(self._buckets)[: max(0, overflow)]:
            del self._buckets[key]


@dataclass
class Limits:
    """The edge's rate limits; ``None`` turns one off. Defaults are argued in ``docs/api.md``."""

    token: Buckets | None = None
    case: Buckets | None = None
    auth_failures: Buckets | None = None
    read: Buckets | None = None
    """Reads per token. A read is a write too: every read of case data appends access-log records
    (NEN 7513) under the log's lock, so an unlimited reader grows the log and holds up every writer."""
    case_token: Buckets | None = None
    """Writes per token on one case, a share of :attr:`case`: one token (a patient on their own
    case, a stuck integration) can spend only this much of a case's budget, so the case's other
    parties are not held off it by one flooder."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(
        cls,
        token: Rate | None = None,
        case: Rate | None = None,
        auth_failures: Rate | None = None,
        read: Rate | None = None,
        case_token: Rate | None = None,
        monotonic: Monotonic = time.monotonic,
    ) -> Limits:
        def made(rate: Rate | None) -> Buckets | None:
            return None if rate is None else Buckets(rate, monotonic)

        return cls(made(token), made(case), made(auth_failures), made(read), made(case_token))

    def take_write(self, token_id: str, case_id: str | None) -> int:
        """A write by ``token_id`` (on ``case_id``, if it names one): 0 when every bucket it
        concerns had a token (one is taken from each: the token's, the case's, the token's on the
        case), else the whole seconds to wait (nothing is taken)."""
        buckets: list[tuple[Buckets | None, str]] = [(self.token, token_id)]
        if case_id is not None:
            buckets += [(self.case, case_id), (self.case_token, f"{case_id}\x1f{token_id}")]
        concerned = [(b, key) for b, key in buckets if b is not None]
        with self.lock:  # all or none: a refusal by one limit must not spend another's budget
            wait = max((b.wait(key) for b, key in concerned), default=0.0)
            if wait > 0:
                return retry_after(wait)
            for b, key in concerned:
                b.take(key)
            return 0

    def take_read(self, token_id: str) -> int:
        """A read by ``token_id``: 0 when its bucket had a token (taken), else the whole seconds to wait."""
        return retry_after(self.read.take(token_id)) if self.read is not None else 0

    def auth_blocked(self, address: str) -> int:
        """0 while ``address`` may still try a token, else the whole seconds until it may."""
        return retry_after(self.auth_failures.wait(address)) if self.auth_failures is not None else 0

    def auth_failed(self, address: str) -> None:
        if self.auth_failures is not None:
            self.auth_failures.take(address)


def retry_after(seconds: float) -> int:
    """A ``Retry-After`` value: whole seconds, rounded up, at least 1 when there is any wait."""
    return 0 if seconds <= 0 else max(1, math.ceil(seconds - 1e-9))

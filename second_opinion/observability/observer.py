"""The service layer's observer (:class:`workflow.service.observer.Observer`) made real: each
operation binds its fields to the log context, runs in a span when tracing is on and is timed
into its histogram; each command's outcome is counted and logged as one line."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager

from workflow.service.observer import ACCEPTED

from .logs import bind
from .metrics import Metrics
from .tracing import Spans

log = logging.getLogger("second_opinion.commands")

LOG_FIELDS = {"event": "command", "case_id": "case_id"}
"""Operation attributes as log fields: ``event`` is structlog's message key, so a command's
event is logged as ``command``."""


class Observed:
    """Logs always; metrics and spans when given."""

    def __init__(self, metrics: Metrics | None = None, spans: Spans | None = None) -> None:
        self.metrics = metrics
        self.spans = spans

    def operation(self, name: str, attributes: Mapping[str, str]) -> AbstractContextManager[None]:
        return self._operation(name, attributes)

    @contextmanager
    def _operation(self, name: str, attributes: Mapping[str, str]) -> Iterator[None]:
        with ExitStack() as stack:
            stack.enter_context(bind(**{LOG_FIELDS.get(k, k): v for k, v in attributes.items()}))
            if self.spans is not None:
                stack.enter_context(self.spans.span(f"second_opinion.{name}", attributes))
            started = time.perf_counter()
            try:
                yield
            finally:
                self._timed(name, attributes, time.perf_counter() - started)

    def _timed(self, name: str, attributes: Mapping[str, str], seconds: float) -> None:
        if self.metrics is None:
            return
        if name == "command":
            self.metrics.command_seconds.labels(attributes.get("event", "unknown")).observe(seconds)
        elif name == "sweep":
            self.metrics.sweep_seconds.observe(seconds)

    def command(self, event: str, outcome: str, refusal: str | None, case_id: str | None = None) -> None:
        if self.metrics is not None:
            self.metrics.commands.labels(event, outcome).inc()
            if refusal is not None:
                self.metrics.refusals.labels(refusal).inc()
        if outcome == ACCEPTED:
            log.info("command accepted", extra={"outcome": outcome, **({"case_id": case_id} if case_id else {})})
        else:  # the class, never the message: a refusal's text may quote what the caller typed
            log.info("command %s (%s)", outcome, refusal, extra={"outcome": outcome, "refusal": refusal})

"""Observability: structured logs, Prometheus metrics and OpenTelemetry traces, wired by the
composition root onto a runtime whose service layer knows only its observer protocol
(:mod:`workflow.service.observer`). docs/operations.md, "Observability", is the operator's guide.

Settings, each read once by :func:`settings_from_env`:

- ``SECOND_OPINION_LOG_FORMAT``: ``json``, ``console`` or ``auto`` (default): ``auto`` is the
  console format when standard error is a terminal, JSON lines otherwise (a service manager, a
  container, a pipe to a log shipper).
- ``SECOND_OPINION_TRACING``: ``off`` (default), ``console`` or ``otlp`` (needs the ``otel`` extra).
- ``/metrics`` is switched on per command (``serve --metrics-port``, ``worker --metrics-port``),
  on a listener of its own bound to 127.0.0.1 unless ``--metrics-host`` says otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TextIO

from workflow.service.readings import Readings
from workflow.service.runtime import Runtime

from .logs import CONSOLE, JSON
from .metrics import Metrics
from .observer import Observed
from .tracing import OFF, Spans, spans_for

ENV_LOG_FORMAT = "SECOND_OPINION_LOG_FORMAT"
ENV_TRACING = "SECOND_OPINION_TRACING"
AUTO = "auto"


@dataclass(frozen=True)
class Settings:
    """The observability settings of one process."""

    log_format: str = CONSOLE
    """``json`` or ``console``, ``auto`` already resolved."""
    tracing: str = OFF
    """``off``, ``console`` or ``otlp``."""


def settings_from_env(env: Mapping[str, str] | None = None, stream: TextIO | None = None) -> Settings:
    """``$SECOND_OPINION_LOG_FORMAT`` (``auto`` resolved against ``stream``, standard error by
    default) and ``$SECOND_OPINION_TRACING``, read (and refused, naming the variable) by the one
    settings object (:mod:`second_opinion.settings`)."""
    from second_opinion import settings

    config = settings.load(env)
    fmt = config.log_format
    if fmt == AUTO:
        out = stream or sys.stderr
        fmt = CONSOLE if out.isatty() else JSON
    return Settings(fmt, config.tracing)


@dataclass(frozen=True)
class Observability:
    """What one process observes with: metrics (None: off) and spans (None: off); logs always."""

    metrics: Metrics | None = None
    spans: Spans | None = None

    @classmethod
    def start(cls, settings: Settings, *, metrics: bool, tracer_provider: Any = None) -> Observability:
        """The instruments ``settings`` and the command ask for (``tracer_provider``: tests' own)."""
        spans = spans_for(settings.tracing, ENV_TRACING, tracer_provider)
        return cls(Metrics() if metrics else None, spans)

    def on(self, runtime: Runtime) -> Runtime:
        """``runtime`` with this process's observer; the query-backed gauges read through it."""
        observed = replace(runtime, observer=Observed(self.metrics, self.spans))
        if self.metrics is not None:
            self.metrics.watch(Readings(observed).take)
        return observed

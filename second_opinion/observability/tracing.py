"""OpenTelemetry traces, with the optional extra ``second-opinion[otel]``.

Nothing here imports OpenTelemetry until tracing is switched on (``SECOND_OPINION_TRACING``):
without the extra, and with tracing off, there is no import cost and no error. Switched on
without the extra, startup stops with one line naming the extra to install.

Which exporter: a tracer provider an embedding program (or ``opentelemetry-instrument``) already
set globally is used as it is; otherwise ``console`` prints spans on standard error (for a look)
and ``otlp`` sends them to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (that exporter is a package of its
own: ``opentelemetry-exporter-otlp-proto-http``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from workflow.errors import ConfigurationError

OFF, CONSOLE, OTLP = "off", "console", "otlp"
TRACER_NAME = "second_opinion"


class Spans:
    """Spans on one OpenTelemetry tracer; an error raised inside a span is recorded on it."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, str], kind: str = "INTERNAL") -> Iterator[Any]:
        from opentelemetry.trace import SpanKind

        with self.tracer.start_as_current_span(name, kind=getattr(SpanKind, kind), attributes=dict(attributes)) as s:
            yield s


def spans_for(mode: str, setting: str, provider: Any = None) -> Spans | None:
    """The spans of ``mode`` (:data:`OFF`: none); ``provider``: a tracer provider to use (tests
    give one with an in-memory exporter)."""
    if mode == OFF:
        return None
    try:
        from opentelemetry import trace
    except ImportError:
        raise ConfigurationError(setting, "tracing needs the OpenTelemetry extra: pip install "
                                 "'second-opinion[otel]'") from None  # fmt: skip
    if provider is None:
        provider = trace.get_tracer_provider()
        if type(provider).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"):  # none set yet: ours
            provider = _provider(mode, setting)
            trace.set_tracer_provider(provider)
    return Spans(provider.get_tracer(TRACER_NAME))


def _provider(mode: str, setting: str) -> Any:
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    except ImportError:
        raise ConfigurationError(setting, "tracing needs the OpenTelemetry SDK: pip install "
                                 "'second-opinion[otel]'") from None  # fmt: skip
    exporter: SpanExporter
    if mode == OTLP:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError:
            raise ConfigurationError(setting, "otlp needs pip install opentelemetry-exporter-otlp-proto-http") from None
        exporter = OTLPSpanExporter()
    else:
        import sys

        exporter = ConsoleSpanExporter(out=sys.stderr)
    provider = TracerProvider(resource=Resource.create({"service.name": "second-opinion"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider

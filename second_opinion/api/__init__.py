"""The HTTP service: ``create_app(service)`` gives an ASGI app; ``second-opinion serve`` runs it."""

from .app import create_app

__all__ = ["create_app"]

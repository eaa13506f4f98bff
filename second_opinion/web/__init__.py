"""The coordinator's desk: server-rendered pages under ``/ui`` of ``second-opinion serve``
(docs/ui.md). Every page calls the service layer's access-checked reads and commands
(:class:`~workflow.service.access.AccessService`), as the API does."""

from .app import create_ui, mount

__all__ = ["create_ui", "mount"]

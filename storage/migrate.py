"""Creating and upgrading the schema with Alembic: the only module that imports it, and only
:func:`storage.initialise` imports this one, so opening storage stays cheap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from workflow.service.progress import Progress

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    """Alembic's configuration for the scripts in ``storage/migrations``; the connection is the
    caller's (``config.attributes["connection"]``), see ``migrations/env.py``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest revision among the migration scripts (``storage.revision.SCHEMA_HEAD`` must equal it)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine, progress: Progress | None = None) -> str:
    """Bring the schema to the code's head revision; safe to run again. ``progress`` hears the
    migrations applied, of those to apply, after each (``migrations/env.py`` passes Alembic's
    ``on_version_apply`` hook on)."""
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        if progress is not None:
            config.attributes["on_version_apply"] = counter(progress, pending(config, conn))
        command.upgrade(config, "head")
    return head_revision()


def pending(config: Config, conn: Connection) -> int:
    """How many migrations lie between the database's revision and the head."""
    current = MigrationContext.configure(conn).get_current_revision()
    script = ScriptDirectory.from_config(config)
    return sum(1 for revision in script.iterate_revisions("head", current or "base") if revision.revision != current)


def counter(progress: Progress, total: int) -> Any:
    """Alembic's ``on_version_apply`` callback, counting the steps it reports to ``progress``."""
    done = 0

    def applied(**_: Any) -> None:
        nonlocal done
        done += 1
        progress(done, total)

    return applied

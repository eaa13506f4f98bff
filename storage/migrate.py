"""Creating and upgrading the schema with Alembic: the only module that imports it, and only
:func:`storage.initialise` imports this one, so opening storage stays cheap."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

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


def upgrade(engine: Engine) -> str:
    """Bring the schema to the code's head revision; safe to run again."""
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return head_revision()

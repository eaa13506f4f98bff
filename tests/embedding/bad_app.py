"""Deliberately wrong: ``test_embedding.py`` expects ``mypy --strict`` to report each line marked
``# error``, which proves the check reads the package's hints (were they missing, every name would
be ``Any`` and anything would pass). Never run: importing it does nothing."""

from __future__ import annotations

from second_opinion import Actor, connect


def misuse() -> None:
    with connect("memory://") as service:
        version: str = service.case("so-x").version  # error: an int, not a str
        service.fire("so-x", "refer", actor="gp-12")  # error: an Actor, not a str
        service.verify(progress=lambda done: None)  # error: a Progress takes (done, total)
        print(Actor("desk-7", "coordinator").name, version)  # error: an Actor has no name

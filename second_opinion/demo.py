"""``second-opinion demo``: a newcomer's first five minutes, on the embedded SQLite file."""

from __future__ import annotations

from rich.console import Console

from workflow.case import Actor
from workflow.errors import SecondOpinionError

from . import render
from .bootstrap import connect, init

DESK = Actor("desk-demo", "coordinator")
GP = Actor("gp-demo", "referrer")
DOCTOR = Actor("dr-demo", "second_opinion_doctor")
PATIENT = Actor("patient-demo", "patient")


def run_demo(url: str, console: Console) -> int:
    """Run the tour; returns the exit code (0 when the audit trail verifies)."""
    revision = init(url)
    console.print(f"[bold]1.[/] database {url} initialised at schema revision {revision}")
    with connect(url) as service:
        full = service.open_case("PX-DEMO-0001", actor=DESK).case_id
        service.fire(full, "refer", actor=GP)
        service.fire(full, "receive_dossier", actor=DOCTOR, data={"items": 4})
        service.fire(full, "review", actor=DOCTOR)
        service.fire(full, "return_advice", actor=DOCTOR)
        service.fire(full, "hand_back", actor=DESK)
        console.print(f"[bold]2.[/] case {full} went along the whole main path")

        stopped = service.open_case("PX-DEMO-0002", actor=DESK, route="royal-doctors").case_id
        service.fire(stopped, "refer", actor=DESK)
        service.fire(stopped, "withdraw", actor=PATIENT, reason="patient decided to stay with the first provider")
        console.print(f"[bold]3.[/] case {stopped} was withdrawn by the patient")

        refused = service.open_case("PX-DEMO-0003", actor=DESK).case_id
        try:
            service.fire(refused, "review", actor=DOCTOR)
        except SecondOpinionError as exc:
            console.print(
                f"[bold]4.[/] an illegal event was refused (and recorded): [red]{type(exc).__name__}[/]: ", end=""
            )
            console.print(str(exc), markup=False)

        console.print(render.cases_table(service.cases()))
        console.print(render.history_table(full, service.history(full)))
        report = service.verify()
    if report.ok:
        console.print(
            f"[bold green]audit trail verified[/]: {report.cases} case(s), {report.records} record(s), "
            "every hash chain intact and every state equal to its replay"
        )
        return 0
    for finding in report.findings:
        console.print(f"[bold red]audit verification FAILED[/]: {finding}", markup=True)
    return 1

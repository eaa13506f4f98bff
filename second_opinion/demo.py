"""``second-opinion demo``: a newcomer's first five minutes, on the embedded SQLite file."""

from __future__ import annotations

from rich.console import Console

from workflow.cases.case import Actor
from workflow.clock import local, parse_instant
from workflow.errors import SecondOpinionError

from . import render
from .bootstrap import connect, init

DESK = Actor("desk-demo", "coordinator")
GP = Actor("gp-demo", "gp")
DOCTOR = Actor("dr-demo", "second_opinion_doctor")
PATIENT = Actor("patient-demo", "patient")
CONSULTANT = Actor("zc-demo", "care_consultant")
CONSENT = {"basis": "written", "scope": "full dossier to the second-opinion provider"}


def run_demo(url: str, console: Console) -> int:
    """Run the tour; returns the exit code (0 when the audit trail verifies)."""
    revision = init(url)
    console.print(f"[bold]1.[/] database {url} initialised at schema revision {revision}")
    with connect(url) as service:
        # the patient chose UMC Utrecht (002, step 3): its checklist applies, and it sees every patient (003)
        domestic = service.open_case("PX-DEMO-0001", actor=DESK, provider="umc-utrecht").case_id
        service.fire(domestic, "record_circumstances", actor=DESK, data={
            "treated_abroad": False, "insured_abroad": False, "has_pathology": True, "has_imaging": False})  # fmt: skip
        service.fire(domestic, "give_consent", actor=PATIENT, data=CONSENT)
        service.fire(domestic, "refer", actor=GP)
        service.fire(domestic, "receive_item", actor=DOCTOR, data={"item": "letter"})
        try:
            service.fire(domestic, "receive_dossier", actor=DOCTOR)
        except SecondOpinionError as exc:
            console.print(f"[bold]2.[/] refused, and recorded: [red]{type(exc).__name__}[/]: ", end="")
            console.print(str(exc), markup=False)
        service.fire(domestic, "receive_item", actor=DOCTOR, data={"item": "pathology"})
        for event in ("receive_dossier", "record_consultation", "review"):
            service.fire(domestic, event, actor=DOCTOR)
        service.fire(domestic, "return_advice", actor=DOCTOR, data={"outcome": "agrees"})
        service.fire(domestic, "hand_back", actor=DESK)
        console.print(f"[bold]3.[/] domestic case {domestic} at UMC Utrecht: referred by the GP, the patient seen, "
                      "back to the first provider")  # fmt: skip

        royal = service.open_case("PX-DEMO-0002", actor=CONSULTANT, route="royal-doctors").case_id  # its one provider
        service.fire(royal, "give_consent", actor=PATIENT, data=CONSENT)
        service.fire(royal, "refer", actor=CONSULTANT)  # Royal Doctors: registered, no referral needed (004)
        for item in ("medical_history", "examinations", "lab_reports"):  # Royal Doctors' own list (004)
            service.fire(royal, "receive_item", actor=CONSULTANT, data={"item": item})
        service.fire(royal, "receive_dossier", actor=CONSULTANT)
        complete_at = parse_instant(service.case(royal).facts["dossier_complete_at"], "dossier_complete_at")
        complete = local(complete_at).strftime("%Y-%m-%d %H:%M %Z")
        (deadline,) = service.deadlines_of(royal)
        assert deadline.due_at is not None
        skipped = deadline.explanation["skipped"]
        due = local(deadline.due_at).strftime("%Y-%m-%d %H:%M %Z")
        console.print(f"[bold]4.[/] Royal Doctors case {royal} (its own checklist; the patient is not seen): dossier "
                      f"complete at {complete}; the report is due "
                      f"{due} (18 working days on {deadline.calendar}, skipping {len(skipped)} days off; "
                      f"`second-opinion show {royal}` explains each)")  # fmt: skip

        stopped = service.open_case("PX-DEMO-0003", actor=DESK).case_id
        service.fire(stopped, "withdraw", actor=PATIENT, reason="decided to stay with the first provider")
        console.print(f"[bold]5.[/] case {stopped} was withdrawn by the patient")

        console.print(render.cases_table(service.cases()))
        console.print(render.history_table(domestic, service.history(domestic)))
        report = service.verify()
    if report.ok:
        console.print(
            f"[bold green]audit trail verified[/]: {report.cases} case(s), {report.records} record(s), "
            "every hash chain intact and every state and fact equal to its replay"
        )
        return 0
    for finding in report.findings:
        console.print(f"[bold red]audit verification FAILED[/]: {finding}", markup=True)
    return 1

"""Dutch terms a reader of the seeds and of this code meets, with their English meaning, and
the seed pages themselves: every rule in this library cites one by its number."""

from __future__ import annotations

SEEDS = (
    ("000", "000_4a57f5f113efd609.txt", "PNO Zorg: the five conditions of the basic insurance, deductible, exclusions"),
    ("001", "001_25b4bef80c6c4524.txt", "MIND Korrelatie: asking, refusal only for serious reasons, GP referral"),
    ("002", "002_10fbdcd2b18347d8.txt", "Jeroen Bosch Ziekenhuis: how to ask, written consent, the doctor decides"),
    ("003", "003_73f1ed2d8e283d6a.txt", "UMC Utrecht: the data required, seeing the patient, transfer of care"),
    ("004", "004_295d5ca8f82634d0.txt", "Interpolis: domestic, Royal Doctors (18 working days), 2e arts online"),
)

RIGHTS = (
    ("ask another doctor for a second opinion", "the KNMG rules and the modelregeling arts-patiënt (not an "
     "article of the WGBO); the seeds state the right without naming a law", "003, 001"),
    ("be refused only for serious reasons (zwaarwegende redenen)", "the KNMG rules and the modelregeling "
     "arts-patiënt, as the seed reports them", "001"),
    ("reimbursement from the basic insurance, on its five conditions (a referral by a doctor, the same field, ...)",
     "the insurer's policy conditions under the Zorgverzekeringswet", "000, 004"),
    ("full reimbursement of Royal Doctors abroad with ZorgActief", "the insurer's supplementary policy", "004"),
    ("a Royal Doctors report within 18 working days of the complete dossier", "the service's own promise "
     "(Interpolis / Royal Doctors), not a statutory term", "004"),
    ("the dossier is sent only on request or with written consent", "the providers' procedures; medical "
     "confidentiality behind them", "002, 003"),
)  # fmt: skip
"""Where each right this library models comes from, and the seed that says so (docs/domain.md)."""

GLOSSARY = (
    ("WGBO", "Wet op de geneeskundige behandelingsovereenkomst", "the Dutch law on the treatment "
     "agreement (Civil Code book 7); it has no article on a second opinion: that right rests on the KNMG "
     "rules and the modelregeling arts-patiënt (see Where each right comes from)"),
    ("KNMG", "Koninklijke Nederlandsche Maatschappij tot bevordering der Geneeskunst", "the Royal Dutch "
     "Medical Association; its professional rules say a doctor cooperates with a second opinion"),
    ("modelregeling arts-patiënt", "patient-doctor model arrangement", "the KNMG and the patients' "
     "federation's model of what patient and doctor may expect of each other, the second opinion included"),
    ("second opinion / tweede mening", "second opinion", "another independent doctor's view on a diagnosis "
     "or treatment; that doctor does not take over the treatment (000, 003)"),
    ("eerste zorgverlener / behandelaar", "first provider", "the treating doctor or other care provider the "
     "patient returns to afterwards (000)"),
    ("huisarts", "GP", "general practitioner; may refer when the first provider does not (000, 001)"),
    ("verwijzing / verwijskaart", "referral", "a doctor's referral; basic insurance pays only with one (000)"),
    ("basisverzekering", "basic insurance", "the mandatory health insurance package (Zvw)"),
    ("aanvullende verzekering", "supplementary insurance", "optional cover on top, e.g. ZorgActief (004)"),
    ("eigen risico", "deductible", "the yearly amount the insured pays first; not for GP or obstetric care (000)"),
    ("eigen bijdrage", "own contribution", "a co-payment; none for a second opinion (000)"),
    ("ZorgConsulent", "care consultant", "the insurer's adviser who helps arrange a second opinion (000, 004)"),
    ("medisch dossier", "medical dossier", "the patient's records; sent only on request or with written "
     "consent (002)"),
    ("toestemming", "consent", "the patient's (written) permission to send the dossier (002)"),
    ("pathologieverslag", "pathology report", "must be legible, in Dutch or English (003)"),
    ("beeldvorming", "imaging", "CT/MRI results and the scans themselves, not loose photographs (003)"),
    ("MRSA-controle", "MRSA check", "required when the patient was treated in a hospital abroad (003)"),
    ("arbeidsongeschiktheid", "work disability", "a second opinion on its degree is never covered (000)"),
    ("werkdagen", "working days", "Royal Doctors reports within 18 working days of the complete dossier (004)"),
    ("BSN", "citizen service number", "the Dutch national identifier; never stored or logged in clear"),
)  # fmt: skip

READINGS = (
    ("Partly covered", "001, 003",
     "\"Regel je zelf een second opinion, dan kan het zijn dat deze niet wordt vergoed, of slechts gedeeltelijk\"; "
     "\"wél verzekerd ... maar een deel zelf moet betalen\"",
     "`partly` is the outcome of a self-arranged opinion under a policy that pays those in part (`generic-basic`). "
     "Eigen risico is not `partly`: 001 calls a referred opinion \"vergoed\" and adds \"Je betaalt wel eigen "
     "risico\", so it is reported beside a `covered` outcome"),
    ("Is a Royal Doctors patient seen?", "004",
     "\"U hoeft daarvoor niet persoonlijk langs bij een specialist\"; "
     "\"Royal Doctors neemt telefonisch contact met u op\"",
     "never: the telephone call is about wishes and the dossier, not an examination, so `require_consultation` and "
     "`record_consultation` are refused; the report comes from the records"),
    ("Is a domestic patient seen?", "002, 003, 004",
     "UMC Utrecht: \"Artsen geven alleen een second opinion als zij de patiënt zelf gezien hebben\"; JBZ: the doctor "
     "\"beoordeelt of het nodig is om een afspraak met u te maken\"; Interpolis: \"Tijdens een (telefonisch) gesprek\"",
     "per provider: always at UMC Utrecht, the doctor decides at JBZ and at a hospital without a row (002 is the "
     "general guide; 004's conversation may be by telephone, which is no examination)"),
    ("The costs team", "003",
     "\"Valt de tweede mening niet onder uw zorgverzekering, of bent u verzekerd in een ander land dan Nederland? "
     "Neem dan eerst contact op met Team Zorgkosten voordat u een afspraak maakt\"",
     "UMC Utrecht's rule only; it gates the complete dossier and the consultation (the appointment), not the "
     "referral; it applies when insured abroad, when the recorded decision is `not_covered`, or when self-paying"),
    ("Self-paying without a referral", "001, 002",
     "\"U hebt geen toestemming nodig\"; \"Als de zorgverzekeraar de kosten niet accepteert, moet u deze namelijk "
     "zelf betalen\"",
     "`proceed_self_paying` needs a recorded decision that does not pay in full, so the patient knows before "
     "going ahead (002 step 1); domestic only: Royal Doctors and 2e arts online are the insurer's own services"),
    ("Changing provider", "002",
     "\"Kies een ziekenhuis en arts\"",
     "allowed until the dossier is complete, with a reason; the checklist restarts, since items sent to one "
     "hospital are not at the next; consent stays (its scope is the patient's words)"),
    ("Waiving a dossier item", "002, 003",
     "UMC Utrecht lists data that \"minimaal aanwezig moeten zijn\"; the other doctor \"bekijkt uw dossier\"",
     "the second-opinion doctor (or the desk for them) may waive with a reason, recorded; on the insurer's routes "
     "the care consultant too; the online question never"),
    ("Escalation after the return", "001",
     "\"Komen jullie er samen niet uit, dan kun je de ondersteuning inroepen van je zorgverzekeraar\"",
     "`escalate` is recorded on the closed case, which stays closed; so is the first provider's answer on "
     "adopting the advice (`record_adoption`), after the return and not at it"),
    ("The 18 working days", "004",
     "\"Binnen maximaal 18 werkdagen, na ontvangst van uw volledige medische dossier\"",
     "a service promise, counted on the `nl-business` calendar (the holidays employers observe), not the "
     "Algemene termijnenwet's: see [deadlines.md](deadlines.md)"),
)
"""Where a seed can be read more than one way: what it says, and the reading this library takes."""

NOT_MODELLED = (
    ("Natura or restitutie, contracted providers, reimbursement amounts", "-",
     "no seed says which policy is which or how much a partial reimbursement is; the decision records only the "
     "outcome and its rules"),
    ("The referral letter itself (\"een nieuwe verwijskaart\")", "001, 004",
     "`refer` records that a referral was made and by whom; the document stays in the care systems"),
    ("Anonymous advice from MIND Korrelatie's counsellors", "001", "outside a case: no one is identified"),
    ("Advice on choosing a hospital (GP, insurer, patient organisation)", "002",
     "the choice is recorded (`choose_provider`), not how it was reached"),
    ("The cost of a copy of the dossier", "000", "listed as never covered; no amounts are kept"),
    ("Tests are not usually redone", "001", "a statement about the opinion's content, not a step"),
    ("Answers to other medical questions in the Royal Doctors report", "004", "the report's content, not a step"),
    ("Whether care the advice recommends is covered (the Persoonlijke Zorgcoach)", "004",
     "a later, separate question to the insurer; Royal Doctors decisions carry a note saying so"),
    ("The own doctor's responsibility for (acute) care until care is transferred", "003",
     "what the states mean (`back_to_first_provider`, `care_transferred`), not something the engine enforces"),
    ("Outpatient clinic telephone numbers per specialty", "003",
     "contact values are the operator's (`SECOND_OPINION_PROVIDER_CONTACTS`), not rules"),
)
"""What the seeds say that this library deliberately does not model, and why."""

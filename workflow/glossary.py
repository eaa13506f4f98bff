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

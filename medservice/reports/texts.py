"""The Danish words of the printed documents, in one place: a later message catalogue
(issue 15, "Danish first") takes them over from here. Keys are stable; values are what
staff read."""

from __future__ import annotations

DA: dict[str, str] = {
    # shared
    "page": "Side {page} af {pages}",
    "facility": "Plejehjem",
    "resident": "Beboer",
    "room": "Værelse",
    "period": "Periode",
    "times_in": "Alle tider er lokal tid ({zone})",
    "as_of": "Status pr. {at}",
    "drug": "Lægemiddel",
    "time": "Kl.",
    "quantity": "Mængde",
    "route": "Adm.vej",
    "pouch": "Dosispose",
    "poured": "Hældt",
    "time_critical": "tidskritisk",
    "signature": "Signatur",
    "signatures": "Signaturer",
    "none": "Ingen",
    # administration chart
    "mar_title": "Medicinskema (administrationsregistrering)",
    "mar_legend": "Tegnforklaring",
    "mar_given": "Givet: initialer på den, der dokumenterede",
    "mar_not_given": "Ikke givet, årsag:",
    "mar_missed": "Glemt: vinduet lukkede uden registrering",
    "mar_not_documented": "Ikke dokumenteret: dosis før ordinationen var kendt i systemet",
    "mar_entered_in_error": "Fejlregistrering (gennemstreget; registreringen er bevaret)",
    "mar_due": "Tom hvid celle: endnu ikke givet",
    "mar_not_scheduled": "Grå celle: ingen dosis planlagt",
    "mar_extra": "PN-givninger, øvrige registreringer og fejlregistreringer",
    "mar_kind": "Type",
    "mar_kind_pn": "PN",
    "mar_kind_unplanned": "Ikke planlagt",
    "mar_kind_scheduled": "Planlagt dosis",
    "mar_reason": "Årsag / bemærkning",
    "mar_no_rows": "Ingen planlagte doser i perioden.",
    "mar_no_extra": "Ingen i perioden.",
    "mar_struck": "fejlregistreret: {reason}",
    "mar_missed_short": "Glemt",
    # emergency list
    "el_title": "Nødliste - medicinrunde",
    "el_shift": "Vagt",
    "el_date": "Dato",
    "el_instruction": (
        "Ved IT-nedbrud: giv efter denne liste og skriv klokkeslæt og signatur ved hver "
        "dosis. Når systemet er tilbage, indtastes hver dosis med det rigtige klokkeslæt: "
        "den markeres som sen dokumentation, intet andet går tabt. Kolonnen Status viser "
        "det, der var dokumenteret, da listen blev skrevet ud."),
    "el_source": "Dosispose / hældt",
    "el_status": "Status",
    "el_given_at": "Givet kl.",
    "el_given": "Givet {at} ({who})",
    "el_not_given": "Ikke givet {at}: {why}",
    "el_not_documented": "Ikke dokumenteret (før systemet)",
    "el_note": "OBS",
    "el_nothing": "Ingen doser i vagten.",
    "el_pn_limit": "Højst {max} {per}; givet {given}, {left} tilbage",
    "el_pn_unlimited": "Ingen grænse; givet {given}",
    "el_pn_last": "sidst givet {at}",
    "per_24_hours": "pr. døgn (24 timer)",
    "per_calendar_day": "pr. kalenderdag",
    "per_hours": "pr. {n} timer",
    "note_paused": "Pauseret",
    "note_discontinued": "Seponeret - giv ikke",
    "note_needs_manual_schedule": "Kan ikke planlægges automatisk - følg ordinationen",
    "note_ended": "Behandlingen er afsluttet - giv ikke",
    "note_change_not_approved": "Ændring fra FMK er ikke godkendt - se før og nu",
    # error-rate report
    "er_title": "Fejlrate for medicingivning",
    "er_formula": (
        "Fejlrate = fejl ÷ (givne doser + ordinerede, ikke givne doser) × 100. En dosis "
        "med flere fejl tæller som én fejl. Nægtede doser og pause efter klinisk vurdering "
        "er ikke fejl. Tallene er afvigelserne, som de er gemt nu (trukket tilbage tæller "
        "ikke)."),
    "er_axis": "Fejlrate pr. måned (%)",
    "er_counts": "Tallene bag fejlraten",
    "er_month": "Måned",
    "er_given": "Givne doser",
    "er_not_given": "Ordineret, ikke givet",
    "er_errors": "Doser med fejl",
    "er_rate": "Fejlrate",
    "er_by_code": "Fejl fordelt på afvigelseskode",
    "er_code": "Kode",
    "er_no_errors": "Ingen fejl i perioden.",
    "er_by_code_note": "En dosis med to fejl tælles under begge koder, så kolonnerne kan "
                       "summe til mere end antallet af doser med fejl.",
    "code_MISSED_DOSE": "Glemt dosis",
    "code_LATE_DOSE": "Givet for sent",
    "code_EARLY_DOSE": "Givet for tidligt",
    "code_WRONG_DOSE": "Forkert dosis",
    "code_EXTRA_DOSE": "Ekstra dosis",
    "code_UNORDERED_DRUG": "Ikke ordineret lægemiddel",
    "code_GIVEN_AFTER_DISCONTINUATION": "Givet efter seponering",
    "code_GIVEN_DURING_PAUSE": "Givet under pause",
    "code_OUTSIDE_TREATMENT_PERIOD": "Uden for behandlingsperioden",
    "code_WRONG_ROUTE": "Forkert administrationsvej",
    "code_PN_LIMIT_EXCEEDED": "PN-grænse overskredet",
    "code_NOT_GIVEN": "Ikke givet",
    "code_LATE_DOCUMENTATION": "Sen dokumentation",
    "code_NEEDS_MANUAL_SCHEDULE": "Kræver manuel plan",
    # not-given reasons: (code on the chart, words)
    "ng_refused": "N|nægtet",
    "ng_clinical_hold": "P|pause efter klinisk vurdering",
    "ng_drug_unavailable": "M|medicin ikke til rådighed",
    "ng_resident_absent": "F|beboer fraværende",
    "ng_other": "A|anden årsag",
}

MONTHS = ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august",
          "september", "oktober", "november", "december")
WEEKDAYS = ("M", "T", "O", "T", "F", "L", "S")  # Monday first


def t(key: str, **values: object) -> str:
    return DA[key].format(**values) if values else DA[key]

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
    "mar_notes": "Ændringer i ordinationerne i perioden",
    "mar_note_paused": "Pauseret fra {start} til {end}",
    "mar_note_paused_open": "Pauseret fra {start} indtil videre",
    "mar_note_discontinued": "Seponeret {at}",
    "mar_note_ended": "Behandlingen slutter {day} (sidste dag)",
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
    "note_card_check": "Tilsynstjek af medicinkortet",
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
    # DPSD collective report (issue 16)
    "dp_title": "Samlerapportering til DPSD - hændelser med medicin",
    "dp_intro": (
        "Månedens utilsigtede hændelser med medicin (lokal tid), talt i DPSD's kategorier "
        "for samlet rapportering. Bekræftet: farmaceuten har vurderet afvigelsen som en "
        "fejl. Afventer vurdering: endnu ikke vurderet eller kræver opfølgning; de "
        "indberettes, når de er vurderet. En dosis med flere afvigelser tæller som én "
        "hændelse. Nægtet medicin og pause efter klinisk vurdering er ikke hændelser."),
    "dp_counts": "Hændelser pr. kategori",
    "dp_area": "Område",
    "dp_category": "Kategori",
    "dp_confirmed": "Bekræftet",
    "dp_awaiting": "Afventer vurdering",
    "dp_total": "I alt",
    "dp_area_administration": "Administration",
    "dp_area_dispensing": "Dispensering",
    "dp_cat_medicine_not_given": "Medicin ikke givet",
    "dp_cat_wrong_dose": "Forkert dosis",
    "dp_cat_wrong_time": "Forkert tidspunkt",
    "dp_cat_wrong_drug": "Forkert eller ikke ordineret lægemiddel",
    "dp_cat_given_when_not_to_give": "Givet under pause eller efter seponering",
    "dp_cat_pn_limit_exceeded": "PN givet ud over maksimum",
    "dp_cat_dispensing_error": "Dispenseringsfejl",
    "dp_outside": "Bekræftede fejl uden for kategorierne (fx forkert administrationsvej), "
                  "ikke med i samlerapporteringen: {n}",
    "dp_individual": "Til overvejelse for enkeltrapportering: bekræftede fejl med høj "
                     "alvorlighed",
    "dp_individual_note": (
        "En hændelse, der har givet mere end mild skade, rapporteres enkeltvis til DPSD og "
        "ikke i samlerapporteringen. Plejehjemmet vurderer skaden; tallene ovenfor "
        "omfatter hændelserne på denne liste."),
    "dp_when": "Tidspunkt",
    "dp_event": "Hændelse",
    "dp_note": "Farmaceutens note",
    "dp_none": "Ingen i måneden.",
    "dp_csv_header": "Plejehjem;Måned;Område;Kategori;Kode;Bekræftet;Afventer vurdering",
    "code_PN_NOT_EVALUATED": "PN-effekt ikke evalueret",
    # not-given reasons: (code on the chart, words)
    "ng_refused": "N|nægtet",
    "ng_clinical_hold": "P|pause efter klinisk vurdering",
    "ng_drug_unavailable": "M|medicin ikke til rådighed",
    "ng_resident_absent": "F|beboer fraværende",
    "ng_other": "A|anden årsag",
    # inspection checks of the medicine card
    "cc_title": "Tilsynstjek af medicinkort",
    "cc_intro": (
        "Medicinkortene gennemgået efter tjeklisten for medicinlister (Styrelsen for "
        "Patientsikkerhed), som de er i systemet nu. Hvert fund nævner punktet, hvad der er "
        "galt, og hvad der skal gøres."),
    "cc_residents": "Beboere gennemgået: {checked}. Fund: {findings}.",
    "cc_summary": "Fund pr. punkt",
    "cc_checkpoint": "Punkt",
    "cc_count": "Antal",
    "cc_findings": "Fund pr. beboer",
    "cc_problem": "Fund",
    "cc_action": "Hvad skal gøres",
    "cc_none": "Ingen fund: medicinkortene opfylder de kontrollerede punkter.",

}

MONTHS = ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august",
          "september", "oktober", "november", "december")
WEEKDAYS = ("M", "T", "O", "T", "F", "L", "S")  # Monday first


def t(key: str, **values: object) -> str:
    return DA[key].format(**values) if values else DA[key]

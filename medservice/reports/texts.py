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

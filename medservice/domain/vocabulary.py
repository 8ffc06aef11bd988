"""One display name per route and unit, whatever the source said (issue 15).

FMK sends a route as a code ("OR") or Danish text ("Oral anvendelse"), FHIR as a SNOMED CT
code (26643006) with a display ("Oral Route (qualifier value)"), and the demo and staff
write "oral"; a unit comes as Danish singular or plural, an EDQM or UCUM code or an HL7
form code ("TAB"). The tables below map each of them, case-insensitively, to one concept;
the catalogue (medservice/i18n) holds the concept's words in each language ("route.oral",
"unit.tablet" with its singular and plural). A value no table knows is shown as the source
wrote it. Adding a synonym: one line here; a new concept: one line here and its words in
every catalogue (docs/i18n.md).
"""

from __future__ import annotations

from decimal import Decimal

from medservice.i18n import Arg, Msg, msg

ROUTES: dict[str, tuple[str, ...]] = {
    # concept: FMK code and Danish text, SNOMED CT code and display, EDQM, plain words
    "oral": ("OR", "oral anvendelse", "oral", "26643006", "oral route",
             "oral route (qualifier value)", "po", "20053000", "peroral"),
    "sublingual": ("SL", "sublingual anvendelse", "sublingual", "37839007",
                   "sublingual route", "sublingual route (qualifier value)", "20054000"),
    "rectal": ("RE", "rektal anvendelse", "rectal", "37161004", "rectal route",
               "rectal route (qualifier value)", "20061000", "rektal"),
    "cutaneous": ("KU", "kutan anvendelse", "cutaneous", "6064005", "topical route",
                  "topical route (qualifier value)", "topical", "20003000", "kutan"),
    "transdermal": ("TD", "transdermal anvendelse", "transdermal", "45890007",
                    "transdermal route", "transdermal route (qualifier value)", "20070000"),
    "subcutaneous": ("SC", "subkutan anvendelse", "subcutaneous", "34206005",
                     "subcutaneous route", "subcutaneous route (qualifier value)",
                     "subcutaneous (qualifier value)", "20066000", "subkutan", "s.c."),
    "intramuscular": ("IM", "intramuskulær anvendelse", "intramuscular", "78421000",
                      "intramuscular route", "intramuscular route (qualifier value)",
                      "20035000", "i.m."),
    "intravenous": ("IV", "intravenøs anvendelse", "intravenous", "47625008",
                    "255560000", "intravenous route", "intravenous route (qualifier value)",
                    "intravenous (qualifier value)", "20045000", "i.v."),
    "inhalation": ("IH", "inhalation", "447694001", "respiratory tract route",
                   "respiratory tract route (qualifier value)", "20020000"),
    "nasal": ("NA", "nasal anvendelse", "nasal", "46713006", "nasal route",
              "nasal route (qualifier value)", "20049000"),
    "ocular": ("OK", "okulær anvendelse", "i øjet", "ocular", "54485002",
               "ophthalmic route", "ophthalmic route (qualifier value)", "20051000"),
    "auricular": ("AU", "aurikulær anvendelse", "i øret", "auricular", "10547007",
                  "otic route", "otic route (qualifier value)", "20001000"),
    "vaginal": ("VA", "vaginal anvendelse", "vaginal", "16857009", "vaginal route",
                "vaginal route (qualifier value)", "20072000"),
    "gastric": ("SO", "i sonde", "gastric", "127490009", "gastrostomy route",
                "gastrostomy route (qualifier value)", "20030000"),
}

UNITS: dict[str, tuple[str, ...]] = {
    # concept: Danish singular and plural, English, EDQM, UCUM / HL7 form codes
    "tablet": ("tablet", "tabletter", "tablets", "TAB", "15054000", "10219000",
               "{tbl}", "tbl"),
    "capsule": ("kapsel", "kapsler", "capsule", "capsules", "CAP", "15012000",
                "10210000", "{cap}"),
    "effervescent_tablet": ("brusetablet", "brusetabletter", "effervescent tablet",
                            "effervescent tablets", "EFFTAB", "10222000"),
    "drop": ("dråbe", "dråber", "drop", "drops", "15019000", "[drp]", "gtt"),
    "puff": ("pust", "puff", "puffs", "15044000"),
    "sachet": ("brev", "breve", "sachet", "sachets", "15048000"),
    "suppository": ("stikpille", "stikpiller", "rektal stikpille", "rektale stikpiller",
                    "suppository", "suppositories", "SUPP", "15055000"),
    "patch": ("plaster", "plastre", "patch", "patches", "PATCH", "15037000"),
    "dose": ("dosis", "doser", "dose", "doses", "15022000"),
    "piece": ("stk", "stk.", "piece", "pieces", "ea", "{piece}", "15053000"),
    "unit": ("enhed", "enheder", "unit", "units", "u", "[iu]_", "IE-enheder"),
    "application": ("påsmøring", "påsmøringer", "påføring", "påføringer", "application",
                    "applications", "15002000"),
    "ml": ("ml", "milliliter", "mL", "15035000"),
    "mg": ("mg", "milligram", "15034000"),
    "g": ("g", "gram", "15028000"),
    "microgram": ("mikrogram", "microgram", "micrograms", "mcg", "ug", "µg", "15060000"),
    "iu": ("IE", "IU", "[iU]", "internationale enheder", "international units"),
}


def _index(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for concept, names in table.items():
        for name in (concept, *names):
            folded = name.strip().casefold()
            assert out.get(folded, concept) == concept, f"{name} names two concepts"
            out[folded] = concept
    return out


_ROUTE_INDEX = _index(ROUTES)
_UNIT_INDEX = _index(UNITS)


def route_concept(value: str) -> str | None:
    """The route a source's code or text names ("OR", "26643006" -> "oral"), or None."""
    return _ROUTE_INDEX.get(value.strip().casefold())


def same_route(a: str, b: str) -> bool:
    """Whether two sources' route values name the same route ("OR" and "Oral Route")."""
    ca, cb = route_concept(a), route_concept(b)
    if ca is not None and cb is not None:
        return ca == cb
    return a.strip().casefold() == b.strip().casefold()


def route_text(value: str) -> Arg:
    """The route as staff read it: the catalogue's name, else the source's own text."""
    concept = route_concept(value)
    return msg(f"route.{concept}") if concept is not None else value.strip()


def unit_concept(value: str) -> str | None:
    return _UNIT_INDEX.get(value.strip().casefold())


def unit_text(value: str, count: Decimal | int) -> Arg:
    """A unit in its singular or plural for `count` ("tabletter" for 2, "tablet" for 1)."""
    concept = unit_concept(value)
    if concept is None:
        return value.strip()
    return msg(f"unit.{concept}", _plural_count(count))


def unit_words(singular: str, plural: str, count: Decimal | int) -> Arg:
    """A source's unit (its singular and plural) for `count`: the vocabulary's one name in
    the right form; a unit it does not know in the source's own singular or plural."""
    name = singular or plural
    if unit_concept(name) is None:
        return singular if Decimal(count) <= 1 and singular else (plural or singular)
    return unit_text(name, count)


def quantity_text(count: Decimal | int, unit: str) -> Msg:
    """"1 tablet", "2 tabletter", "0,5 tablet"; "1 tablet" / "2 tablets" in English."""
    # {n} is the quantity itself (a decimal comma in Danish), the count only picks the form
    return Msg("quantity.unit", (("n", Decimal(count)), ("unit", unit_text(unit, count))),
               _plural_count(count))


def drug_text(name: str, strength: str) -> Arg:
    """"Metformin 500 mg": the drug with its strength wherever staff see it."""
    name, strength = name.strip(), strength.strip()
    if not strength or strength.casefold() in name.casefold():
        return name
    return msg("drug.with_strength", name=name, strength=strength)


def _plural_count(count: Decimal | int) -> int:
    """The count gettext picks a form by: staff write a fraction of one in the singular
    ("1/2 tablet", "0,5 tablet"), so up to 1 is singular, more is plural."""
    return 1 if Decimal(count) <= 1 else 2

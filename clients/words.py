"""medctl's own words (table headers, status words, the lines staff read) in medctl's
language: `--lang`/MEDCTL_LANG, else Danish. The words are catalogue messages (`cli.*` keys
in medservice/i18n/locales, docs/i18n.md); `--json` output never passes through here."""

from __future__ import annotations

import functools

from medservice.i18n import Arg, Msg, call_language, catalogue_keys, msg
from medservice.v1 import common_pb2
from medservice.v1 import discrepancies_pb2 as dpb
from medservice.v1 import medicine_cards_pb2 as cpb


def language() -> str:
    return call_language()  # --lang, set in medctl's main as the calls' accept-language


def say(value: Arg) -> str:
    """A catalogue message (or a plain value) in medctl's language."""
    return value.render(language()) if isinstance(value, Msg) else str(value)


def enum_word(key: str, name: str, prefix: str) -> Msg | str:
    """An enum value in words: `name` less `prefix` is the catalogue's `cli.<key>.<value>`
    ("SEVERITY_HIGH" -> cli.severity.high); "?" for an unset one."""
    value = name.removeprefix(prefix).lower()
    if value == "unspecified":
        return "?"
    return msg(f"cli.{key}.{value}") if f"cli.{key}.{value}" in _known() else value


@functools.cache
def _known() -> frozenset[str]:
    """The catalogue's keys: a value a newer server sends that has no words yet is shown as
    it is."""
    return frozenset(catalogue_keys())


def severity(value: int) -> Msg | str:
    return enum_word("severity", common_pb2.Severity.Name(value),  # type: ignore[arg-type]
                     "SEVERITY_")


def discrepancy_status(value: int) -> Msg | str:
    return enum_word("discrepancy", dpb.DiscrepancyStatus.Name(value),  # type: ignore[arg-type]
                     "DISCREPANCY_STATUS_")


def decision(value: int) -> Msg | str:
    return enum_word("decision", dpb.ReviewDecision.Name(value),  # type: ignore[arg-type]
                     "REVIEW_DECISION_")


def role(value: int) -> Msg | str:
    return enum_word("role", common_pb2.Role.Name(value), "ROLE_")  # type: ignore[arg-type]


def order_state(value: int) -> Msg | str:
    return enum_word("state", cpb.OrderState.Name(value),  # type: ignore[arg-type]
                     "ORDER_STATE_")


def decimal_text(value: str) -> str:
    """A decimal as the server wrote it ("100.00"), with medctl's language's decimal sign."""
    return value.replace(".", ",") if language() == "da" else value

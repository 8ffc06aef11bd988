"""The words of the printed documents: the catalogue's "report.*" and "code.*" messages
(medservice/i18n, issue 15), in the language the document is written in.

A document is written in the caller's language (accept-language) or else its facility's
(`written_in_facility_language` around each PDF builder); `t` takes the short keys the
builders use ("page", "el_title", "code_MISSED_DOSE")."""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Protocol, TypeVar

from medservice.domain.facility import Facility
from medservice.i18n import (
    DEFAULT_LANGUAGE,
    Arg,
    Msg,
    call_language,
    catalogue_keys,
    number,
    text,
)

_language: contextvars.ContextVar[str] = contextvars.ContextVar(
    "document_language", default=DEFAULT_LANGUAGE)


class _OfFacility(Protocol):
    @property
    def facility(self) -> Facility: ...


D = TypeVar("D", bound=_OfFacility)
R = TypeVar("R")


def written_in_facility_language(build: Callable[[D], R]) -> Callable[[D], R]:
    """A document builder that writes in the caller's language, else its facility's."""
    @functools.wraps(build)
    def in_language(document: D) -> R:
        token = _language.set(call_language(document.facility.language))
        try:
            return build(document)
        finally:
            _language.reset(token)
    return in_language


def catalogue_key(key: str) -> str:
    """"code_MISSED_DOSE" -> "code.MISSED_DOSE" (shared with alerts), else "report.<key>"."""
    return f"code.{key[5:]}" if key.startswith("code_") else f"report.{key}"


def t(key: str, **values: Arg) -> str:
    return text(catalogue_key(key), _language.get(), **values)


def shown(value: Arg) -> str:
    """A message or quantity (Decimal) in the document's language."""
    if isinstance(value, Msg):
        return value.render(_language.get())
    return number(value, _language.get()) if isinstance(value, Decimal) else str(value)


def _danish_words() -> dict[str, str]:
    """The documents' words in Danish by their short keys, as templates: for a module that
    reads them whole (the board's discrepancy code names); kept beside `t`."""
    out = {}
    for key in catalogue_keys():
        area, _, name = key.partition(".")
        if area in ("report", "code"):
            out[name if area == "report" else f"code_{name}"] = text(key, DEFAULT_LANGUAGE)
    return out


DA: dict[str, str] = _danish_words()
MONTHS = tuple(text(f"month.{m}", DEFAULT_LANGUAGE) for m in range(1, 13))
WEEKDAYS = tuple(text(f"weekday.short.{d}", DEFAULT_LANGUAGE) for d in range(1, 8))


def month_name(month: int) -> str:
    """1 -> "januar" / "January"."""
    return text(f"month.{month}", _language.get())


def weekday_letter(weekday: int) -> str:
    """Monday (0) -> "M"; Wednesday (2) -> "O" in Danish, "W" in English."""
    return text(f"weekday.short.{weekday + 1}", _language.get())

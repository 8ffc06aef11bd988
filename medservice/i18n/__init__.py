"""The one message catalogue of every staff-facing text (issue 15, "Danish first").

Texts live in gettext catalogues, one .po file per language in `locales/` (`da.po`, the
default, and `en.po`), keyed by stable message ids ("finding.wrong_route"); the values are
Python format strings (`{name}` placeholders). The .po files are read with Babel when first
used and turned into gettext translations in memory: there is no compile step and no .mo
file to keep in step with its .po.

Code never holds a staff-facing sentence: it builds a `Msg` (a key and its arguments, which
may be messages themselves), and the edge renders it in the language of the call: the
caller's `accept-language` (gRPC metadata; the HTTP front end passes Accept-Language) when
it names a language of the catalogue, else the facility's setting. A `Msg` is stored as
JSON next to the text rendered in the facility's language, so a stored discrepancy or alert
can be shown in another language later. How to add a text: docs/i18n.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Union

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DEFAULT_LANGUAGE = "da"
LANGUAGES = ("da", "en")  # the catalogue's languages; the first is the default
LOCALES = Path(__file__).parent / "locales"

Arg = Union[str, int, Decimal, "Msg"]  # a Decimal is a quantity: 0,5 in Danish


@dataclass(frozen=True)
class Msg:
    """A staff-facing text not yet rendered: its catalogue key and arguments. `count`
    chooses the singular or plural form of a plural message and is `{n}` in it."""

    key: str
    args: tuple[tuple[str, Arg], ...] = ()
    count: int | None = None

    def render(self, language: str = DEFAULT_LANGUAGE) -> str:
        language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        values = {name: _shown(value, language) for name, value in self.args}
        template = _template(language, self.key, self.count)
        if self.count is not None:
            values.setdefault("n", self.count)
        return template.format(**values) if values else template

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"k": self.key}
        if self.args:
            out["a"] = {name: _arg_json(value) for name, value in self.args}
        if self.count is not None:
            out["n"] = self.count
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Msg:
        args = tuple((name, _arg_back(value)) for name, value in (data.get("a") or {}).items())
        return cls(str(data["k"]), args, data.get("n"))

    def keys(self) -> Iterator[str]:
        """This message's key and those of the messages in its arguments."""
        yield self.key
        for _, value in self.args:
            if isinstance(value, Msg):
                yield from value.keys()


def number(value: Decimal, language: str = DEFAULT_LANGUAGE) -> str:
    """A quantity as staff write it: 1, 0,5 (Danish) or 0.5 (English); no exponent, no
    trailing zeros."""
    shown = format(value.normalize(), "f")
    shown = shown if shown != "-0" else "0"
    return shown.replace(".", ",") if language == "da" else shown


def rendered(value: Arg, language: str = DEFAULT_LANGUAGE) -> str:
    """A message or an argument (a quantity with the language's decimals) as text."""
    return str(_shown(value, language))


def _shown(value: Arg, language: str) -> str | int:
    if isinstance(value, Msg):
        return value.render(language)
    if isinstance(value, Decimal):
        return number(value, language)
    return value


def _arg_json(value: Arg) -> Any:
    if isinstance(value, Msg):
        return value.to_json()
    if isinstance(value, Decimal):
        return {"d": str(value)}
    return value


def _arg_back(value: Any) -> Arg:
    if isinstance(value, dict):
        return Decimal(value["d"]) if "d" in value else Msg.from_json(value)
    return value if isinstance(value, int) else str(value)


def msg(key: str, count: int | None = None, /, **args: Arg) -> Msg:
    """The message `key` of the catalogue with its arguments."""
    return Msg(key, tuple(args.items()), count)


def text(key: str, language: str = DEFAULT_LANGUAGE, count: int | None = None, /,
         **args: Arg) -> str:
    """The message `key` rendered at once (documents written in one language)."""
    return msg(key, count, **args).render(language)


def encode(message: Msg | None) -> str | None:
    return None if message is None else json.dumps(message.to_json(), ensure_ascii=False,
                                                    separators=(",", ":"))


def decode(raw: str | Mapping[str, Any] | None) -> Msg | None:
    """A stored message; None for none or one this version cannot read (its text stays)."""
    if raw is None:
        return None
    try:
        return Msg.from_json(json.loads(raw) if isinstance(raw, str) else raw)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def supported(language: str) -> bool:
    return language in LANGUAGES


# -- the language of a call ------------------------------------------------------------------

_requested: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "requested_language", default=None)


def negotiate(accept_language: str) -> str | None:
    """The catalogue language an Accept-Language value prefers ("en-GB,da;q=0.8" -> "en"),
    or None when it names none of them (the facility's setting then applies)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = tag.strip().split("-")[0].lower()
        if quality > 0 and language in LANGUAGES:
            ranked.append((-quality, i, language))
    return min(ranked)[2] if ranked else None


def request_language(accept_language: str | None) -> None:
    """Sets the language the current call asked for (None or unsupported: none)."""
    _requested.set(negotiate(accept_language) if accept_language else None)


@contextlib.contextmanager
def requesting(accept_language: str | None) -> Iterator[None]:
    """The language asked for within the block only (a command line client's calls)."""
    token = _requested.set(negotiate(accept_language) if accept_language else None)
    try:
        yield
    finally:
        _requested.reset(token)


def requested_language() -> str | None:
    return _requested.get()


def call_language(facility_language: str = DEFAULT_LANGUAGE) -> str:
    """The language to answer the current call in: the caller's, else the facility's."""
    return _requested.get() or facility_language


def localised(message: Msg | None, stored: str) -> str:
    """A stored text for the current call: as stored (in the facility's language), or its
    message rendered in the language the caller asked for."""
    language = _requested.get()
    return stored if message is None or language is None else message.render(language)


# -- the catalogue ---------------------------------------------------------------------------

def catalogue_path(language: str) -> Path:
    return LOCALES / f"{language}.po"


@functools.cache
def _translations(language: str) -> gettext.GNUTranslations:
    with catalogue_path(language).open("rb") as f:
        catalog = read_po(f, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def catalogue_keys(language: str = DEFAULT_LANGUAGE) -> list[str]:
    """Every message id of a language's catalogue (a plural message by its singular id)."""
    with catalogue_path(language).open("rb") as f:
        catalog = read_po(f, locale=language)
    return [str(m.id[0] if isinstance(m.id, tuple | list) else m.id) for m in catalog if m.id]


def _template(language: str, key: str, count: int | None) -> str:
    t = _translations(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    if count is None:
        return t.gettext(key)
    return t.ngettext(key, key + ".plural", count)

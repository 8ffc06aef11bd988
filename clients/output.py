"""How medctl prints: tables for people, JSON lines (--json) for programs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message

from clients.words import say
from medservice.i18n import Arg


def print_table(rows: Sequence[Sequence[Arg]], header: Sequence[Arg]) -> None:
    """A catalogue message in a header or cell is shown in medctl's language; headers in
    capitals, as every medctl table."""
    header = [say(c).upper() for c in header]
    rows = [[say(c) for c in row] for row in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())


def print_json(messages: Iterable[Message]) -> None:
    for m in messages:
        print(MessageToJson(m, indent=None, preserving_proto_field_name=True))


def print_object(value: dict[str, Any]) -> None:
    """One JSON line of medctl's own (what a command did, when no message says it)."""
    print(json.dumps(value, ensure_ascii=False))

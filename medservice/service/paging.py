"""Opaque page tokens for keyset pagination (AIP-158).

A token carries the last key of the previous page and a fingerprint of the query, so a
token used with other filters is refused instead of silently paging something else.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from medservice.domain.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Page:
    size: int
    after: Any  # the last key of the previous page, or None on the first page
    query: str


def _fingerprint(query: dict[str, Any]) -> str:
    raw = json.dumps(query, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def read_page(page_size: int, page_token: str, query: dict[str, Any] | None = None) -> Page:
    if page_size < 0:
        raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    fp = _fingerprint(query or {})
    if not page_token:
        return Page(size, None, fp)
    try:
        padded = page_token + "=" * (-len(page_token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after, token_fp = data["a"], data["q"]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument([FieldViolation("page_token", "is not a valid page token")]) from None
    if token_fp != fp:
        raise InvalidArgument([FieldViolation(
            "page_token", "belongs to a query with other parameters")])
    return Page(size, after, fp)


def next_token(page: Page, items: list[Any], last_key: Any) -> str:
    """A token for the page after `items`, or "" when this was the last page.

    The caller fetched page.size + 1 rows; a full page plus one means there is more.
    """
    if len(items) <= page.size:
        return ""
    raw = json.dumps({"a": last_key, "q": page.query}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")

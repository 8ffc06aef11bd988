"""The shift lead's live board at /board: a static page (HTML, JS, CSS shipped in the
package, no build step) that uses only the public HTTP/JSON API and SSE watch with the token
the user pastes. Nothing here knows about alerts; the page is the API's first client."""

from __future__ import annotations

import functools
import json
from importlib import resources

from medservice.reports.texts import DA

# The page's files by URL path, with their content types.
FILES = {
    "/board": ("index.html", "text/html; charset=utf-8"),
    "/board/": ("index.html", "text/html; charset=utf-8"),
    "/board/board.js": ("board.js", "text/javascript; charset=utf-8"),
    "/board/board.css": ("board.css", "text/css; charset=utf-8"),
}

# The page runs only its own files and talks only to this origin: a token pasted into it
# cannot be sent elsewhere by injected markup, and no other site may frame it.
HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
     b"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]


TEXTS_PATH = "/board/texts.json"


def board_texts() -> dict[str, dict[str, str]]:
    """The Danish words the page takes from the server's one catalogue (reports/texts.py)
    rather than a copy of its own: discrepancy codes by their API (enum) names."""
    return {"discrepancyCode": {f"DISCREPANCY_CODE_{key.removeprefix('code_')}": text
                                for key, text in DA.items() if key.startswith("code_")}}


@functools.cache
def board_file(path: str) -> tuple[bytes, str] | None:
    """The body and content type served at `path`, or None when it is not the board's."""
    if path == TEXTS_PATH:
        return (json.dumps(board_texts(), ensure_ascii=False).encode(),
                "application/json; charset=utf-8")
    found = FILES.get(path)
    if found is None:
        return None
    name, content_type = found
    return resources.files("medservice.web").joinpath("board", name).read_bytes(), content_type

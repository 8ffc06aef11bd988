"""Small lxml helpers shared by the FMK readers. They match on local names, so every FMK 1.4
namespace (and the mixes real messages contain) reads the same."""

from __future__ import annotations

from lxml.etree import _Element as Element


def local_name(element: Element) -> str:
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def elements(parent: Element) -> list[Element]:
    """The child elements (not comments or processing instructions)."""
    return [c for c in parent if isinstance(c.tag, str)]


def children(parent: Element, name: str) -> list[Element]:
    return [c for c in elements(parent) if local_name(c) == name]


def child(parent: Element, name: str) -> Element | None:
    for c in elements(parent):
        if local_name(c) == name:
            return c
    return None


def text(element: Element) -> str:
    return (element.text or "").strip()

"""XML from a provider, read as the hostile input it may be.

defusedxml refuses DTDs, entity declarations and external references, which
stops entity bombs and XXE; it does not stop a body that is merely huge or
deep. A 14 MB body of nested elements, under the response cap, once blocked
the event loop for 3.9 s and left 550 MB behind. So the body is fed to the
parser in slices, handing the loop back between them, and the tree builder
refuses past a depth, an element count and an amount of text: the parse stops
at the first limit instead of building what no provider page needs.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from defusedxml.common import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from gateway.errors import UpstreamInvalidResponse

__all__ = ["XmlLimits", "parse_untrusted"]


@dataclass(frozen=True)
class XmlLimits:
    """Far above what a page of a provider's records holds (100 LEAP relationships are about
    1,500 elements, 8 deep, 40 kB of text), far below what would hurt the process."""

    max_depth: int = 32
    max_elements: int = 50_000
    max_text: int = 4_000_000
    """Characters of text and attribute values, in all."""
    slice_bytes: int = 64 * 1024
    """Bytes parsed before the loop gets a turn: a millisecond or so of expat."""


class _TooMuch(Exception):
    pass


class _BoundedBuilder(ET.TreeBuilder):
    def __init__(self, limits: XmlLimits) -> None:
        super().__init__()
        self._limits = limits
        self._depth = 0
        self._elements = 0
        self._text = 0

    def start(self, tag: str, attrs: dict[str, str], /) -> ET.Element:
        self._depth += 1
        self._elements += 1
        if self._depth > self._limits.max_depth:
            raise _TooMuch(f"nested deeper than {self._limits.max_depth} elements")
        if self._elements > self._limits.max_elements:
            raise _TooMuch(f"more than {self._limits.max_elements} elements")
        self._count_text(sum(len(value) for value in attrs.values()))
        return super().start(tag, attrs)

    def end(self, tag: str, /) -> ET.Element:
        self._depth -= 1
        return super().end(tag)

    def data(self, data: str, /) -> None:
        self._count_text(len(data))
        super().data(data)

    def _count_text(self, characters: int) -> None:
        self._text += characters
        if self._text > self._limits.max_text:
            raise _TooMuch(f"more than {self._limits.max_text} characters of text")


async def parse_untrusted(
    content: bytes, provider: str, limits: XmlLimits | None = None
) -> ET.Element:
    """The root element, or `UPSTREAM_INVALID_RESPONSE` naming what was wrong: every way a
    parser can fail (bad XML, a DTD, an encoding it cannot read, a limit) ends up here."""
    limits = limits or XmlLimits()
    parser = DefusedXMLParser(
        target=_BoundedBuilder(limits), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        for start in range(0, len(content), limits.slice_bytes):
            parser.feed(content[start : start + limits.slice_bytes])
            if start + limits.slice_bytes < len(content):
                await asyncio.sleep(0)
        root: Any = parser.close()
    except DefusedXmlException:
        raise _invalid(provider, "XML with a DTD or entities, which the gateway refuses") from None
    except ET.ParseError:
        raise _invalid(provider, "a body that is not XML") from None
    except (ValueError, LookupError):
        raise _invalid(provider, "XML in an encoding the gateway does not read") from None
    except _TooMuch as error:
        raise _invalid(provider, f"XML {error}, which the gateway refuses") from None
    if not isinstance(root, ET.Element):
        raise _invalid(provider, "a body that is not XML")
    return root


def _invalid(provider: str, what: str) -> UpstreamInvalidResponse:
    return UpstreamInvalidResponse(provider, f"{provider} returned {what}.")

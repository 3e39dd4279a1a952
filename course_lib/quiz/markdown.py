"""Quiz text as safe HTML (for the widgets) and as escaped Markdown (for text/markdown outputs).

:func:`markdown_to_html` renders with markdown-it-py (CommonMark) with raw HTML off
(``html=False``: any ``<tag>`` in a quiz file is shown literally, never interpreted) and images
off (a quiz never loads anything). The bank uses *italic*, **bold**, `code`, fenced code blocks,
"- " and "1. " lists and blank-line paragraphs. One rule differs from CommonMark: a ``*``
between two letters or digits stays a literal star, so arithmetic such as ``2*3*4`` is not
turned into emphasis.
"""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark", {"html": False}).disable("image")
_CODE_RE = re.compile(r"(```[^\n`]*\n.*?```|`[^`\n]+`)", re.DOTALL)
_INTRAWORD_STAR = re.compile(r"(?<=\w)\*(?=\w)")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def _split_code(text: str) -> list[tuple[bool, str]]:
    """Split text into (is_code, piece); code pieces (fenced blocks, `spans`) keep their backticks."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _CODE_RE.finditer(text):
        if m.start() > pos:
            parts.append((False, text[pos:m.start()]))
        parts.append((True, m.group(0)))
        pos = m.end()
    if pos < len(text):
        parts.append((False, text[pos:]))
    return parts


def markdown_to_html(text: str | None) -> str:
    """Render quiz text as safe HTML (markdown-it-py, raw HTML escaped, no images); "" for no text."""
    if not text:
        return ""
    source = "".join(p if is_code else _INTRAWORD_STAR.sub(r"\\*", p) for is_code, p in _split_code(text))
    return _MD.render(source).strip()


def md_prose(text: str) -> str:
    """Quiz prose for a text/markdown output: HTML special characters escaped outside code."""
    return "".join(p if is_code else html.escape(p, quote=False) for is_code, p in _split_code(text))


def md_plain(text: str) -> str:
    """Plain text (an option) for a text/markdown output: HTML and Markdown characters escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))

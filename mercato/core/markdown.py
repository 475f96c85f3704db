"""Markdown written by people (project briefs, bids, profiles) rendered to safe HTML.

Two layers keep the output safe: markdown-it-py runs with raw HTML disabled, so ``<script>`` in the
source comes out as escaped text, and nh3 then sanitises the rendered HTML against a short allow-list
of tags, attributes and URL schemes, so a parser quirk cannot smuggle markup through.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Sequence
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markupsafe import Markup

__all__ = ["DEFAULT_MAX_LENGTH", "plain_text_excerpt", "render_markdown"]

DEFAULT_MAX_LENGTH = 20_000
"""Characters of Markdown source rendered at most; the rest is dropped."""

RENDER_CACHE_SIZE = 512
"""Rendered texts kept in memory (each at most ``DEFAULT_MAX_LENGTH`` characters of source)."""

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "p", "br", "hr", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li",
        "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
"""Tags kept in rendered Markdown; any other tag is removed and its text kept."""

ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {"a": frozenset({"href", "title"})}
"""Attributes kept per tag; everything else (``class``, ``style``, ``on*`` ...) is removed."""

ALLOWED_URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})
"""Schemes a link may use; relative links are kept, other schemes lose their ``href``."""

LINK_REL = "nofollow noopener ugc"
"""``rel`` put on every link: user-generated content, no SEO credit, no ``window.opener``."""

# C0 control characters except \t (0x09) and \n (0x0a), plus DEL. \r is normalised to \n before this.
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_WHITESPACE = re.compile(r"\s+")


def _render_image_as_alt_text(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: Any
) -> str:
    """Render ``![alt](src)`` as its escaped alt text: images are not allowed, their description is."""
    return escapeHtml(renderer.renderInlineAsText(tokens[idx].children or [], options, env))


def _render_del_open(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: Any
) -> str:
    """Open ``~~strikethrough~~`` as ``<del>`` (markdown-it's default is ``<s>``)."""
    return "<del>"


def _render_del_close(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: Any
) -> str:
    """Close ``~~strikethrough~~`` with ``</del>``."""
    return "</del>"


_parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)
_parser.add_render_rule("image", _render_image_as_alt_text)
_parser.add_render_rule("s_open", _render_del_open)
_parser.add_render_rule("s_close", _render_del_close)


def _clean_source(text: str, max_length: int) -> str:
    """Normalise line endings, drop control characters and cut the source to ``max_length``."""
    if max_length < 0:
        raise ValueError(f"max_length must be zero or more, not {max_length}")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL_CHARS.sub("", text)
    return text[:max_length]


def render_markdown(text: str, *, max_length: int = DEFAULT_MAX_LENGTH) -> Markup:
    """Render user-written Markdown to sanitised HTML that templates can output as is.

    CommonMark plus tables and ~~strikethrough~~; raw HTML in the source is shown as text. Control
    characters other than newline and tab are removed, and text beyond ``max_length`` characters is
    cut off (not an error). Links keep only ``http``, ``https``, ``mailto`` or relative targets and get
    ``rel="nofollow noopener ugc"``; images are replaced by their alt text.

    The result is a pure function of the arguments, so recent ones are kept: lists render the
    same briefs over and over, and rendering costs far more than a dictionary lookup.
    """
    return _render_cached(text, max_length)


@functools.lru_cache(maxsize=RENDER_CACHE_SIZE)
def _render_cached(text: str, max_length: int) -> Markup:
    source = _clean_source(text, max_length)
    if not source.strip():
        return Markup("")
    rendered = _parser.render(source)
    cleaned = nh3.clean(
        rendered,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        link_rel=LINK_REL,
        url_schemes=set(ALLOWED_URL_SCHEMES),
    )
    return Markup(cleaned)


def plain_text_excerpt(text: str, length: int = 200) -> str:
    """Return the start of a Markdown text as plain text, at most ``length`` characters long.

    Markup is rendered and then stripped, entities are decoded and whitespace is collapsed to single
    spaces. A longer text is cut at the last word boundary that fits and ends with "…" (counted in
    ``length``). The result is plain, unescaped text: let the template escape it.
    """
    if length < 1:
        raise ValueError(f"length must be at least 1, not {length}")
    stripped = nh3.clean(str(render_markdown(text)), tags=set())
    plain = _WHITESPACE.sub(" ", html.unescape(stripped)).strip()
    if len(plain) <= length:
        return plain
    cut = plain[: length - 1]
    if not plain[length - 1].isspace():
        # The cut fell inside a word: go back to the last space, unless the text is one long word.
        head, space, _ = cut.rpartition(" ")
        if space and head.strip():
            cut = head
    return cut.rstrip(" ,;:-\u2013\u2014") + "…"

"""User Markdown renders to a short allow-list of HTML; nothing executable or off-list survives."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from markupsafe import Markup, escape

from mercato.core import markdown
from mercato.core.markdown import DEFAULT_MAX_LENGTH, plain_text_excerpt, render_markdown

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
VOID_TAGS = {"br", "hr"}


class _Collector(HTMLParser):
    """Parses rendered HTML into its start tags (with attributes), end tags and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.ends: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.ends.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector


def assert_safe(html: str) -> _Collector:
    """Only allowed tags and attributes, every non-void tag closed, no executable URL anywhere."""
    doc = parse(html)
    for tag, attrs in doc.starts:
        assert tag in ALLOWED_TAGS, f"tag {tag!r} in {html!r}"
        allowed_attrs = {"href", "title", "rel"} if tag == "a" else set()
        assert set(attrs) <= allowed_attrs, f"attributes {attrs!r} on {tag!r} in {html!r}"
        href = attrs.get("href")
        if href is not None:
            assert re.match(r"(?i)(https?:|mailto:|/|#|[^:]*$)", href), href
    opened = [tag for tag, _ in doc.starts if tag not in VOID_TAGS]
    assert sorted(opened) == sorted(doc.ends), html
    # Text may mention "<script>" or "onerror=", but only ever escaped: no raw "<" starts a foreign tag.
    for match in re.finditer(r"</?([a-zA-Z][a-zA-Z0-9]*)", html):
        assert match.group(1).lower() in ALLOWED_TAGS, f"{match.group(0)!r} in {html!r}"
    return doc


def links(html: str) -> list[dict[str, str | None]]:
    return [attrs for tag, attrs in parse(html).starts if tag == "a"]


def test_allow_lists_are_exactly_the_reviewed_ones() -> None:
    # Defence in depth behind markdown-it: widening these is a security decision, not a tweak.
    tags, attributes, schemes = (
        markdown.ALLOWED_TAGS,
        markdown.ALLOWED_ATTRIBUTES,
        markdown.ALLOWED_URL_SCHEMES,
    )
    assert tags == ALLOWED_TAGS
    assert attributes == {"a": {"href", "title"}}
    assert schemes == {"http", "https", "mailto"}
    assert markdown.LINK_REL == "nofollow noopener ugc"


def test_returns_markup_that_jinja_will_not_escape_again() -> None:
    html = render_markdown("**bold** and *em*")
    assert isinstance(html, Markup)
    assert html == "<p><strong>bold</strong> and <em>em</em></p>\n"
    assert escape(html) == html


def test_empty_and_blank_input() -> None:
    assert render_markdown("") == ""
    assert render_markdown("  \n\t\n") == ""
    assert plain_text_excerpt("") == ""


def test_script_tags_are_shown_as_text_not_run() -> None:
    html = render_markdown("Hello <script>alert('x')</script> world")
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    doc = assert_safe(html)
    assert "".join(doc.text) == "Hello <script>alert('x')</script> world\n"


@pytest.mark.parametrize(
    "source",
    [
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)" onclick="steal()">click</a>',
        "<iframe src='https://evil.example'></iframe>",
        "<div style='position:fixed'>overlay</div>",
        "<svg onload=alert(1)>",
        "<!-- hidden --><b>bold</b>",
        "<details open ontoggle=alert(1)>",
    ],
)
def test_raw_html_never_becomes_markup(source: str) -> None:
    html = render_markdown(source)
    doc = assert_safe(html)
    # The source comes back as visible text, escaped, inside a paragraph.
    assert [tag for tag, _ in doc.starts] == ["p"]
    assert "".join(doc.text).strip() == source
    assert html.startswith("<p>&lt;")


def test_raw_html_block_is_escaped() -> None:
    html = render_markdown("<div>\n<script>alert(1)</script>\n</div>\n\ntext")
    assert_safe(html)
    assert "&lt;div&gt;" in html
    assert "<p>text</p>" in html


@pytest.mark.parametrize(
    "source",
    [
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](<javascript:alert(1)>)",
        "[click](&#106;avascript:alert(1))",
        "[click](vbscript:msgbox(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "<javascript:alert(1)>",
        "[click][ref]\n\n[ref]: javascript:alert(1)",
    ],
)
def test_dangerous_link_targets_do_not_become_hrefs(source: str) -> None:
    html = render_markdown(source)
    assert_safe(html)
    for attrs in links(html):
        href = attrs.get("href") or ""
        assert not href.lower().startswith(("javascript", "vbscript", "data")), html


def test_data_url_images_never_load() -> None:
    # markdown-it refuses an SVG data URL (it stays literal text) ...
    svg = render_markdown("![pixel](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)")
    assert_safe(svg)
    assert [tag for tag, _ in parse(svg).starts] == ["p"]
    # ... and accepts a PNG one, which then shows only its alt text.
    png = render_markdown("![pixel](data:image/png;base64,iVBORw0KGgo=)")
    assert png == "<p>pixel</p>\n"


def test_images_become_their_escaped_alt_text() -> None:
    html = render_markdown("See ![a <b>diagram</b> & *notes*](https://example.com/d.png) here")
    assert_safe(html)
    assert "example.com" not in html
    assert html == "<p>See a &lt;b&gt;diagram&lt;/b&gt; &amp; notes here</p>\n"


def test_links_get_rel_and_keep_href_and_title() -> None:
    html = render_markdown('[docs](https://example.com/a?b=1&c=2 "The docs") and <https://example.org>')
    assert_safe(html)
    found = links(html)
    assert found == [
        {"href": "https://example.com/a?b=1&c=2", "title": "The docs", "rel": "nofollow noopener ugc"},
        {"href": "https://example.org", "rel": "nofollow noopener ugc"},
    ]


def test_mailto_and_relative_links_are_kept_other_schemes_lose_href() -> None:
    html = render_markdown("[mail](mailto:dev@example.com) [project](/projects/7) [ftp](ftp://example.com/f)")
    assert_safe(html)
    found = links(html)
    assert [attrs.get("href") for attrs in found] == ["mailto:dev@example.com", "/projects/7", None]
    assert all(attrs["rel"] == "nofollow noopener ugc" for attrs in found)


def test_user_supplied_rel_or_target_cannot_be_set() -> None:
    html = render_markdown('[x](https://example.com "t")')
    assert 'target="' not in html
    assert html.count("rel=") == 1


def test_bare_urls_are_not_linkified() -> None:
    html = render_markdown("visit https://example.com today")
    assert links(html) == []
    assert html == "<p>visit https://example.com today</p>\n"


def test_tables_render_with_alignment_styles_removed() -> None:
    html = render_markdown("| Skill | Years |\n|:------|------:|\n| Python | 7 |\n| Go | 3 |")
    doc = assert_safe(html)
    tags = [tag for tag, _ in doc.starts]
    assert tags == ["table", "thead", "tr", "th", "th", "tbody", "tr", "td", "td", "tr", "td", "td"]
    assert "style=" not in html
    assert [t for t in doc.text if t.strip()] == ["Skill", "Years", "Python", "7", "Go", "3"]


def test_strikethrough_renders_as_del() -> None:
    assert render_markdown("~~old price~~ new") == "<p><del>old price</del> new</p>\n"


def test_headings_lists_quotes_code_and_rules_are_kept() -> None:
    source = "# Title\n\n###### Small\n\n> quoted\n\n- one\n- two\n\n1. first\n\n---\n\nline  \nbreak\n\n"
    source += "```python\nif a < b: print('<b>')\n```\n\nuse `x > 1`"
    html = render_markdown(source)
    doc = assert_safe(html)
    tags = [tag for tag, _ in doc.starts]
    for tag in ("h1", "h6", "blockquote", "ul", "ol", "li", "hr", "br", "pre", "code"):
        assert tag in tags, tag
    # The fence's language class is not on the allow-list, the code itself is escaped.
    assert "class=" not in html
    assert "<pre><code>if a &lt; b: print('&lt;b&gt;')\n</code></pre>" in html
    assert "<code>x &gt; 1</code>" in html


def test_nul_and_control_characters_are_removed() -> None:
    html = render_markdown("a\x00b\x01c\x08d\x0be\x1bf\x7fg\tend")
    assert html == "<p>abcdefg\tend</p>\n"
    assert "\ufffd" not in html  # markdown-it would turn a NUL into U+FFFD; it is gone before that


def test_newlines_and_crlf_still_separate_blocks() -> None:
    assert render_markdown("one\r\n\r\ntwo\rthree") == "<p>one</p>\n<p>two\nthree</p>\n"


def test_rtl_override_survives_as_text_inside_closed_elements() -> None:
    html = render_markdown("invoice_\u202egnp.exe **bold \u202e** [\u202elink](https://example.com/\u202e)")
    doc = assert_safe(html)
    assert "\u202e" in "".join(doc.text)
    assert html.count("\u202e") == 3  # two in text; the one in the URL is percent-encoded
    assert links(html)[0]["href"] == "https://example.com/%E2%80%AE"
    assert html.endswith("</a></p>\n")
    assert "<strong>bold \u202e</strong>" in html


def test_long_input_is_cut_not_rejected() -> None:
    html = render_markdown("word " * 10_000)
    text = "".join(parse(html).text)
    assert len(text.strip()) <= DEFAULT_MAX_LENGTH
    assert len(text.strip()) >= DEFAULT_MAX_LENGTH - 5
    assert render_markdown("abcdefghij" * 10, max_length=15) == "<p>abcdefghijabcde</p>\n"
    assert render_markdown("anything", max_length=0) == ""


def test_cut_in_the_middle_of_markup_still_gives_balanced_html() -> None:
    html = render_markdown("**bold [link](https://example.com/long) text**", max_length=20)
    assert_safe(html)


def test_negative_max_length_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_length"):
        render_markdown("x", max_length=-1)


@pytest.mark.parametrize(
    "source",
    ["> " * 5_000 + "deep", "[" * 20_000, "*a " * 7_000, "<" * 20_000, "| x |\n|---|\n" + "| y |\n" * 3_000],
)
def test_pathological_input_stays_safe(source: str) -> None:
    assert_safe(render_markdown(source))


def test_excerpt_strips_markup_and_collapses_whitespace() -> None:
    source = "# Need a *Django* dev\n\n  Build   an **API**\n\n- fast\n- tested\n\n"
    source += "| a | b |\n|---|---|\n| 1 | 2 |"
    assert plain_text_excerpt(source) == "Need a Django dev Build an API fast tested a b 1 2"


def test_excerpt_unescapes_entities_and_keeps_angle_brackets_as_text() -> None:
    excerpt = plain_text_excerpt("Fish &amp; chips &copy; 2024, `a < b` and <script>x</script>")
    assert excerpt == "Fish & chips \u00a9 2024, a < b and <script>x</script>"
    # It is plain text: escaping it is the template's job, and it is not marked safe.
    assert not isinstance(excerpt, Markup)


def test_excerpt_cuts_at_a_word_boundary_with_ellipsis() -> None:
    source = "alpha beta gamma delta epsilon"
    assert plain_text_excerpt(source, length=100) == source
    assert plain_text_excerpt(source, length=len(source)) == source
    assert plain_text_excerpt(source, length=14) == "alpha beta…"
    assert plain_text_excerpt(source, length=17) == "alpha beta gamma…"
    assert plain_text_excerpt(source, length=16) == "alpha beta…"
    for length in range(1, len(source)):
        excerpt = plain_text_excerpt(source, length=length)
        assert len(excerpt) <= length
        assert excerpt.endswith("…")
        assert excerpt[:-1] == "" or source.startswith(excerpt[:-1])


def test_excerpt_drops_trailing_punctuation_before_ellipsis() -> None:
    assert plain_text_excerpt("one, two, three", length=10) == "one, two…"


def test_excerpt_hard_cuts_a_single_long_word() -> None:
    assert plain_text_excerpt("x" * 50, length=10) == "x" * 9 + "…"


def test_excerpt_default_length_is_200() -> None:
    excerpt = plain_text_excerpt("lorem ipsum " * 100)
    assert len(excerpt) <= 200
    assert len(excerpt) > 190
    assert excerpt.endswith("ipsum…") or excerpt.endswith("lorem…")


def test_excerpt_rejects_zero_length() -> None:
    with pytest.raises(ValueError, match="length"):
        plain_text_excerpt("x", length=0)

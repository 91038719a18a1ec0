"""What markup a page really contains, as a browser's tokenizer would see it."""

from __future__ import annotations

from html.parser import HTMLParser

# Every element the page and the connection view are built from.
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "main", "footer", "section",
    "article", "div", "h1", "h2", "h3", "p", "ol", "ul", "li", "code", "pre", "a", "span",
    "strong", "table", "thead", "tbody", "tr", "th", "td", "dl", "dt", "dd", "script", "svg",
    "g", "text", "line", "path", "circle", "rect",
}


class Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def parse(page: str) -> Markup:
    markup = Markup()
    markup.feed(page)
    markup.close()
    return markup


def assert_no_injected_markup(page: str, max_scripts: int) -> None:
    """Only our elements, no event-handler attributes, no script but ours."""
    markup = parse(page)
    assert set(markup.tags) <= ALLOWED_TAGS, set(markup.tags) - ALLOWED_TAGS
    handlers = [name for name, _ in markup.attributes if name.startswith("on")]
    assert not handlers, handlers
    assert markup.tags.count("script") <= max_scripts
    assert not any((value or "").lower().startswith("javascript:")
                   for _, value in markup.attributes)

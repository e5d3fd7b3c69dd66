"""Templates and the filters that make learner text safe to show.

Jinja2 escapes HTML everywhere (autoescape). On top of that, text a learner's code produced
(output, exception messages, its source) goes through ``visible``: terminal escapes and
the Unicode controls that reorder or hide text (bidi overrides, zero-width characters) are
shown as their code points, so a page never renders anything the learner did not visibly
write. Code is highlighted on the server by Pygments, into classes styled by a static sheet.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from .. import __version__

TEMPLATES = Path(__file__).parent / "templates"
_FORMATTER = HtmlFormatter(cssclass="highlight", wrapcode=True)
_LEXER = PythonLexer(stripnl=False, ensurenl=False)
# C0 and C1 controls but tab and newline, DEL, and the format characters (Cf: bidi overrides
# and isolates, zero-width joiners and spaces, the BOM): shown, never applied.
_HIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]|[^\x00-\x7f]")


def visible(text: object) -> str:
    """``text`` with every control or invisible formatting character shown as ``<U+XXXX>``."""
    return _HIDDEN.sub(_shown, str(text) if text is not None else "")


def _shown(match: re.Match[str]) -> str:
    char = match.group()
    if len(char) == 1 and (ord(char) < 0xA0 or unicodedata.category(char) == "Cf"):
        return f"<U+{ord(char):04X}>"
    return char


def highlight(code: object) -> Markup:
    """Python source as highlighted HTML (Pygments escapes it), controls made visible."""
    return Markup(pygments_highlight(visible(code), _LEXER, _FORMATTER))  # noqa: S704


_INLINE = HtmlFormatter(nowrap=True)


def _fence(code: str, language: str, _: object) -> str:
    """A fenced block of a prompt, highlighted when it is Python (else escaped by the caller,
    markdown-it, which also keeps a block that starts with ``<pre`` as it is)."""
    if language.lower() in ("python", "py", ""):
        spans = pygments_highlight(code, _LEXER, _INLINE)
        return f'<pre class="highlight"><code>{spans}</code></pre>'
    return ""


# CommonMark without raw HTML: a prompt's tags are shown as text, never rendered.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "highlight": _fence})


def markdown(text: object) -> Markup:
    """An instructor's prompt as HTML: CommonMark (code spans, fences highlighted, lists),
    raw HTML escaped, controls made visible."""
    return Markup(_MARKDOWN.render(visible(text)))  # noqa: S704


def highlight_css() -> str:
    css: str = _FORMATTER.get_style_defs(".highlight")  # type: ignore[no-untyped-call]
    return css


templates = Jinja2Templates(directory=TEMPLATES)
templates.env.filters["visible"] = visible
templates.env.filters["highlight"] = highlight
templates.env.filters["markdown"] = markdown
templates.env.globals["version"] = __version__


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)

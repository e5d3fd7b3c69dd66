"""What the pages make of text: prompts as CommonMark without raw HTML, learner text shown."""

from __future__ import annotations

from grader.web.render import markdown, visible


def test_a_prompt_renders_code_spans_and_highlights_python_fences() -> None:
    html = markdown("Use `httpx.AsyncClient`.\n\n```python\nasync def f():\n    pass\n```\n")
    assert html.startswith("<p>Use <code>httpx.AsyncClient</code>.</p>\n")
    assert '<pre class="highlight"><code><span class="k">async</span>' in html


def test_raw_html_in_a_prompt_is_shown_as_text() -> None:
    html = markdown("<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>")
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_script_link_is_not_a_link() -> None:
    html = markdown("[click](javascript:alert(1))")
    assert "href" not in html


def test_other_fences_are_escaped_not_highlighted() -> None:
    assert markdown("```text\n<b>x</b>\n```") == (
        '<pre><code class="language-text">&lt;b&gt;x&lt;/b&gt;\n</code></pre>\n'
    )


def test_controls_and_bidi_overrides_are_shown_as_code_points() -> None:
    assert visible("a\x1b[31mb\u202ec\u200bd\té\n") == "a<U+001B>[31mb<U+202E>c<U+200B>d\té\n"
    assert markdown("evil \u202e text") == "<p>evil &lt;U+202E&gt; text</p>\n"

"""A template that is only text is given back as Jinja would render it, without a render:
most texts and every plain choice label are. Checked against the sandbox's own render."""

from __future__ import annotations

import random

import jinja2
import pytest

from palabre.errors import TemplateError
from palabre.i18n.bounds import Limits
from palabre.i18n.sandbox import BoundedSandbox
from palabre.i18n.templates import Templates, constant_text

# What texts are made of, and every character Jinja's syntax starts with.
ALPHABET = ["a", "é", "ع", " ", "\n", "\r\n", "\t", "{", "}", "%", "#", "-", "+", "{{ x }}", "+"]


def rendered_by_jinja(source: str) -> str:
    return BoundedSandbox().from_string(source).render({"x": "X"})


@pytest.mark.parametrize(
    "source",
    [
        "",
        "Bonjour !",
        "Bonjour\n",  # Jinja drops one trailing newline (keep_trailing_newline=False)
        "Bonjour\n\n",
        "مرحبا بكم",
        "{% raw %}{{ not a variable }}{% endraw %}",
        "100 % sûr {# a comment #} !",
        "{%- if true %}x{% endif %}",
        "Bonjour {{ x }}",
    ],
)
def test_text_is_what_jinja_renders(source: str) -> None:
    assert Templates().render(source, {"x": "X"}, where="t") == rendered_by_jinja(source)


def test_texts_made_at_random_are_what_jinja_renders() -> None:
    rng, templates, constant = random.Random(7), Templates(), 0
    for _ in range(2000):
        source = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
        try:
            expected = rendered_by_jinja(source)
        except jinja2.TemplateSyntaxError:
            with pytest.raises(TemplateError):
                templates.render(source, {"x": "X"}, where="t")
            continue
        constant += constant_text(templates.env.parse(source)) is not None
        assert templates.render(source, {"x": "X"}, where="t") == expected, repr(source)
    assert constant > 500, "the loop reached plain texts"


def test_only_text_is_recognised_as_text() -> None:
    parse = BoundedSandbox().parse
    assert constant_text(parse("Bonjour\n")) == "Bonjour"
    assert constant_text(parse("{% raw %}{{ x }}{% endraw %}")) == "{{ x }}"
    assert constant_text(parse("Bonjour {{ x }}")) is None
    assert constant_text(parse("{% if x %}a{% endif %}")) is None


def test_a_text_longer_than_a_message_is_still_refused() -> None:
    templates = Templates(limits=Limits(output=10))
    with pytest.raises(TemplateError, match="longer than 10 characters"):
        templates.render("x" * 11, {}, where="t")
    assert templates.render("x" * 10, {}, where="t") == "x" * 10

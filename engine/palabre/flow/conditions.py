"""Plain-English explanations of a `when:` condition (or `count:` expression) that Jinja
cannot read, with a hint that shows the fix on the author's own text.

Jinja's own messages ("chunk after expression", "unexpected char '&' at 2") describe its
parser, not the mistake. The usual mistakes are borrowed from other languages (`=`, `&&`,
`!`, `===`, `<>`), an unclosed quote or bracket, or a condition that stops half-way.
"""

from __future__ import annotations

import re

import jinja2

EXAMPLE = "answer == 'yes' and age | int > 17"

# Each rule: a pattern found outside quotes, what it means, and what to write instead.
_MISTAKES: tuple[tuple[re.Pattern[str], str, str, str], ...] = (
    (re.compile(r"==="), "'===' is not Jinja", "==", "use == to compare"),
    (re.compile(r"&&"), "'&&' is not Jinja", " and ", "use and to join conditions"),
    (re.compile(r"\|\|"), "'||' is not Jinja", " or ", "use or for either condition"),
    (re.compile(r"<>"), "'<>' is not Jinja", "!=", "use != for 'is not equal to'"),
    (re.compile(r"=>"), "'=>' is not Jinja", ">=", "use >= for 'at least'"),
    (re.compile(r"=<"), "'=<' is not Jinja", "<=", "use <= for 'at most'"),
    (re.compile(r"!(?!=)\s*"), "'!' is not Jinja", "not ", "use not to negate"),
    (
        re.compile(r"\s*(?<![=!<>])=(?!=)\s*"),
        "'=' sets a value, it does not compare",
        " == ",
        "use == to compare",
    ),
)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def unreadable(source: str, error: Exception, *, expression: bool) -> tuple[str, str]:
    """(message, hint) for a template or expression that cannot be parsed."""
    if isinstance(error, jinja2.TemplateSyntaxError):
        if expression:
            return explain(source, error.message or "")
        where = f"line {error.lineno} of the template"
        return f"template error: {where}: {error.message}", "check the {{ }} and {% %} pairs"
    if isinstance(error, RecursionError):
        return "template error: it nests too deeply to be read", "split it into simpler parts"
    return "template error: a number in it has too many digits", "use a smaller number"


def explain(source: str, jinja_message: str) -> tuple[str, str]:
    """(message, hint) for the expression `source` that failed with `jinja_message`."""
    masked = _QUOTED.sub(_blank, source)  # what is quoted cannot be a mistake
    if "'" in _QUOTED.sub("", masked) or '"' in _QUOTED.sub("", masked):
        return "a quote is not closed", f"close every quote you open: {EXAMPLE}"
    fixed, first = source, None
    for pattern, message, replacement, advice in _MISTAKES:  # the hint fixes every mistake
        masked_fixed = _QUOTED.sub(_blank, fixed)
        if pattern.search(masked_fixed):
            first = first or (message, advice)
            fixed = _fixed(fixed, masked_fixed, pattern, replacement)
    if first:
        return first[0], f"{first[1]}: {fixed}"
    if masked.lstrip().lower().startswith("if "):
        return "a condition is written without 'if'", f"write only the test: {source.lstrip()[3:]}"
    depth = _depth(masked)
    if depth < 0:
        return "a ) or ] closes nothing", "remove it, or open what it closes"
    if depth > 0:
        return "a ( or [ is not closed", f"close each ( and [ you open: {EXAMPLE}"
    if "end of template" in jinja_message:
        return "the expression stops half-way", f"finish it, like: {EXAMPLE}"
    if jinja_message == "chunk after expression":
        return (
            "there is more text after the expression than Jinja can read",
            "join two conditions with and / or, and put words in quotes: answer == 'yes'",
        )
    return f"Jinja cannot read this expression ({jinja_message})", f"write it like: {EXAMPLE}"


def _blank(match: re.Match[str]) -> str:
    quote, inside = match.group(0)[0], len(match.group(0)) - 2
    return quote + "_" * inside + quote


def _fixed(source: str, masked: str, pattern: re.Pattern[str], replacement: str) -> str:
    """`source` with every mistake replaced, found in `masked` so quotes are left alone."""
    pieces, last = [], 0
    for match in pattern.finditer(masked):
        pieces += [source[last : match.start()], replacement]
        last = match.end()
    return re.sub(r"\s+", " ", "".join(pieces) + source[last:]).strip()


def _depth(masked: str) -> int:
    """How many brackets are left open at the end; negative when one closes nothing."""
    depth = 0
    for char in masked:
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(char, 0)
        if depth < 0:
            return depth
    return depth

"""The floor's conversation: the UIC questionnaire written by hand, with no engine.

One pure function, `advance(session, text)`, takes the stored session (None for a new
contact) and the contact's text, and returns the new session (None once the code is
given), the replies, and the code when the conversation ends. Each reply that varies is
one Jinja template render, in the same sandboxed environment the engine uses. The texts
are the UIC flow's French ones (its default locale), so both servers send the same bytes.

`qr_png` draws the code with the library and settings of plugins/qr (palabre_qr.png):
qrcode, error correction M, 10-pixel modules, a 4-module border; the last 256 drawings
are kept, as palabre_qr.drawing keeps them.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from typing import Any

import qrcode
import qrcode.constants
from jinja2.sandbox import ImmutableSandboxedEnvironment

WELCOME = (
    "Bienvenue ! Je vais vous poser 5 questions courtes pour créer votre Code "
    "d'Identification Unique (CIU). Envoyez « aide » à tout moment."
)
GENDERS = ("Homme", "Femme", "Trans", "Autre")
QUESTIONS = (
    "1/5 Quelles sont les 3 premières lettres de votre nom de famille ?",
    "2/5 Quelles sont les 3 premières lettres de votre prénom ?",
    "3/5 En quelle année êtes-vous né(e) ? Le dernier chiffre suffit.",
    "4/5 Quel est le code à 2 lettres de votre ville de naissance ? Par exemple KI pour Kinshasa.",
    "5/5 Quel est votre genre ?{% for title in genders %}\n{{ loop.index }}. {{ title }}"
    "{% endfor %}",
)
CODE = (
    "Votre Code d'Identification Unique est {{ code }}. Gardez-le et présentez-le à chaque visite."
)
YEAR = re.compile(r"\d|(19|20)\d\d")

_jinja = ImmutableSandboxedEnvironment(autoescape=False)
TEMPLATES = [_jinja.from_string(text) for text in QUESTIONS]
CODE_TEMPLATE = _jinja.from_string(CODE)


def advance(
    session: dict[str, Any] | None, text: str
) -> tuple[dict[str, Any] | None, list[str], str | None]:
    """(new session, replies, code or None) after the contact sent `text`."""
    if session is None:
        return {"step": 0}, [WELCOME, TEMPLATES[0].render(genders=GENDERS)], None
    step = session["step"]
    value = _value(step, text)
    if value is None:  # asked again, as the flow's reprompt does
        return session, [TEMPLATES[step].render(genders=GENDERS)], None
    session = {**session, f"a{step}": value, "step": step + 1}
    if step + 1 < len(QUESTIONS):
        return session, [TEMPLATES[step + 1].render(genders=GENDERS)], None
    code = "".join(session[f"a{i}"] for i in range(len(QUESTIONS)))
    return None, [CODE_TEMPLATE.render(code=code)], code


def _value(step: int, text: str) -> str | None:
    """The answer to question `step` as the code takes it, or None when it is not one."""
    if step in (0, 1, 3):
        letters = "".join(c for c in text if c.isalpha()).upper()
        size = 2 if step == 3 else 3
        return letters[:size] if len(letters) >= 2 else None
    if step == 2:
        digits = "".join(c for c in text if c.isdigit())
        return digits[-1] if YEAR.fullmatch(digits) else None
    choice = text.strip()
    return choice if choice in {"1", "2", "3", "4"} else None


@lru_cache(maxsize=256)
def qr_png(text: str) -> bytes:
    """The QR code of `text` as PNG bytes (the settings of palabre_qr.png)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4)
    code.add_data(text.encode("utf-8"))
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer, format="PNG")
    return buffer.getvalue()

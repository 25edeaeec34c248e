"""The QR plugin: `qr.code` draws a code as a PNG, kept in the media store behind a signed,
expiring URL. Every PNG is decoded back with OpenCV, as a phone camera would read it, and
the one for MBEIBR7DA1 is kept as an image snapshot in __snapshots__/test_qr/ (look at it).

`qr_flow` and `decode` are shared with the transport tests, which deliver the same image.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from syrupy.extensions.image import PNGImageSnapshotExtension

import palabre_qr
from palabre import builtins
from palabre.actions import ActionContext
from palabre.config import Settings
from palabre.db.database import Database
from palabre.errors import ActionError
from palabre.plugins import collect_actions, make_plugin_manager
from palabre.stores.bundle import Stores
from palabre.stores.media import DEFAULT_TTL
from palabre.web import simulator
from palabre.web.app import create_app
from palabre_qr import ACTION
from palabre_qr.png import qr_png

CODE = "MBEIBR7DA1"
SECRET = b"qr-test-secret"
QR_FLOW = """\
id: qr_card
title: QR card
triggers:
  default: true
settings:
  default_locale: en
  locales: [en]
  source_locale: en
steps:
  ask_code:
    kind: ask
    text: "Which code should I draw?"
    save_as: code
  draw:
    kind: action
    action: qr.code
    with:
      text: "{{ code }}"
    save_as: qr
    on_error: no_image
  card:
    kind: end
    text: "Your code is {{ code }}."
    image: "{{ qr.image }}"
  no_image:
    kind: end
    text: "Your code is {{ code }}; its image could not be drawn."
"""
CARD = f"Your code is {CODE}."


def qr_flow(folder: Path) -> Path:
    """Write the QR card flow (ask a code, draw it, end with its image) into `folder`."""
    path = folder / "qr_card.yaml"
    path.write_text(QR_FLOW)
    return path


def decode(png: bytes) -> str:
    """What a QR reader finds in `png` ("" when it finds no code)."""
    pixels = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert pixels is not None, "the bytes are not an image OpenCV can read"
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(pixels)
    return text


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def context_with(stores: Stores | None) -> ActionContext:
    return ActionContext("qr_card", "draw", "en", "contact-key", {}, stores=stores)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def stores(tmp_path, clock):
    opened = Stores.on(Database(f"sqlite+aiosqlite:///{tmp_path}/palabre.db"), SECRET, clock)
    yield opened
    await opened.aclose()


@pytest.fixture
def media(stores):
    return stores.media


# -- drawing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [CODE, "https://example.org/verify?code=MBEIBR7DA1", "Mbengue, Ibrahima: 1997 (DA) #1"],
)
def test_the_png_decodes_back_to_its_text(text):
    png = qr_png(text)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert decode(png) == text


def test_the_same_text_always_gives_the_same_bytes():
    assert qr_png(CODE) == qr_png(CODE)
    assert qr_png(CODE) != qr_png("MBEIBR7DA2")


def test_the_png_of_a_code_matches_its_snapshot(snapshot):
    assert qr_png(CODE) == snapshot.use_extension(PNGImageSnapshotExtension)


def test_the_modules_are_big_enough_for_a_cheap_camera():
    pixels = cv2.imdecode(np.frombuffer(qr_png(CODE), np.uint8), cv2.IMREAD_GRAYSCALE)
    # version 1 is 21 modules, plus 4 of quiet zone each side, at 10 pixels a module
    assert pixels.shape == (290, 290)
    assert (pixels[:40, :40] == 255).all(), "the quiet zone is white"


def test_a_text_too_long_for_one_code_is_an_action_error():
    with pytest.raises(ActionError, match="too long for one QR code"):
        qr_png("x" * 3000)


# -- the qr.code action ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_action_stores_the_png_for_24_hours_and_returns_its_id(stores, media, clock):
    result = await ACTION.run({"text": CODE}, context_with(stores))
    item = await media.get(result["image"])
    assert set(result) == {"image"}
    assert (item.content_type, decode(item.data)) == ("image/png", CODE)
    assert item.expires_at == clock.now + DEFAULT_TTL == clock.now + 24 * 3600


@pytest.mark.anyio
async def test_ttl_sets_how_long_the_image_lives(stores, media, clock):
    result = await ACTION.run({"text": CODE, "ttl": "600"}, context_with(stores))
    assert (await media.get(result["image"])).expires_at == clock.now + 600


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"text": ""}, "empty text"),
        ({"text": "   "}, "empty text"),
        ({"text": CODE, "ttl": "soon"}, "ttl must be a whole number"),
        ({"text": CODE, "ttl": "0"}, "ttl must be"),
        ({"text": CODE, "ttl": "-60"}, "ttl must be"),
        ({"text": CODE, "ttl": str(31 * 24 * 3600)}, "ttl must be"),
        ({"text": CODE, "ttl": "6²"}, "ttl must be"),
        ({"text": CODE, "ttl": "9" * 5000}, "ttl must be"),
        ({"text": "x" * 3000}, "too long"),
    ],
)
async def test_bad_arguments_are_action_errors_with_nothing_for_the_contact(
    stores, arguments, says
):
    with pytest.raises(ActionError, match=says) as failed:
        await ACTION.run(arguments, context_with(stores))
    assert failed.value.user_message is None, "the flow's on_error decides what is said"


@pytest.mark.anyio
async def test_without_the_media_store_the_action_fails_plainly():
    with pytest.raises(ActionError, match="media store"):
        await ACTION.run({"text": CODE}, context_with(None))


@pytest.mark.anyio
async def test_without_qrcode_the_action_names_the_extra(stores, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "qrcode", None)
    with pytest.raises(ActionError, match=r"pip install 'palabre\[qr\]'") as failed:
        await ACTION.run({"text": CODE}, context_with(stores))
    assert failed.value.user_message is None
    assert "pip install 'palabre[qr]'" in caplog.text, "the operator is told in the logs"


@pytest.mark.anyio
async def test_without_pillow_the_action_names_the_extra(stores, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ActionError, match=r"pip install 'palabre\[qr\]'"):
        await ACTION.run({"text": CODE}, context_with(stores))


def test_the_module_imports_without_qrcode_or_pillow():
    code = (
        "import sys; sys.modules['qrcode'] = sys.modules['PIL'] = None; "
        "import palabre_qr; print(palabre_qr.register_actions()[0].name)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == "qr.code", run.stderr


def test_the_plugin_is_registered_by_its_entry_point():
    assert collect_actions(make_plugin_manager())["qr.code"] is ACTION


# -- expiry ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_expired_image_is_refused_then_purged(stores, media, clock):
    kept = (await ACTION.run({"text": CODE, "ttl": "3600"}, context_with(stores)))["image"]
    brief = (await ACTION.run({"text": CODE, "ttl": "60"}, context_with(stores)))["image"]
    token = await media.token(brief)
    assert media.verify(token) == brief
    clock.now += 61
    assert media.verify(token) is None, "the token expires with its image"
    assert await media.get(brief) is None
    assert await media.token(brief) is None
    assert await media.purge() == 1, "only the expired image is deleted"
    assert await media.get(kept) is not None
    assert await media.purge() == 0


# -- through the app: the simulator's JSON, then /media/<token>.png ----------------------------


@pytest.fixture
def served(tmp_path, live_server):
    settings = Settings(
        data_dir=tmp_path / "data",
        secrets={"PALABRE_SECRET": "qr-secret"},
        options={"PALABRE_SIMULATOR": "true"},
    )  # the simulator drives the flow
    plugins = make_plugin_manager([builtins, palabre_qr, simulator], entry_points=False)
    app = create_app([qr_flow(tmp_path)], settings, plugins=plugins)
    with live_server(app) as running:
        running.media = app.state.host.stores.media
        yield running


def card(server, code: str = CODE) -> dict:
    """Run the QR card flow in the simulator; the last message (the card)."""
    session = str(uuid.uuid4())
    for text in ("Hello", code):
        response = httpx.post(
            f"{server.url}/web/messages",
            json={"flow": "qr_card", "lang": "en", "session": session, "text": text},
        )
        assert response.status_code == 200, response.text
    return response.json()["messages"][-1]


def test_the_flow_ends_with_the_image_served_at_its_signed_url(served):
    message = card(served)
    assert message["text"] == CARD
    url = message["image_url"]
    assert url.startswith("/media/") and url.endswith(".png")
    assert CODE not in url, "the URL does not reveal the code"
    response = httpx.get(served.url + url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "private, no-store"
    assert decode(response.content) == CODE


def test_two_cards_of_one_code_get_different_urls(served):
    assert card(served)["image_url"] != card(served)["image_url"]


def change_one(text: str, at: int) -> str:
    """`text` with the character at `at` replaced by another of the same kind."""
    old = text[at]
    new = ("0" if old != "0" else "1") if old.isdigit() else ("A" if old != "A" else "B")
    return text[:at] + new + text[at + 1 :]


def test_a_missing_altered_or_expired_token_is_refused(served):
    token = card(served)["image_url"].removeprefix("/media/").removesuffix(".png")
    media_id, expires, mac = token.split(".")
    gone = served.media.sign("Z" * len(media_id), int(expires))
    refused = {
        "altered id": f"{change_one(media_id, 0)}.{expires}.{mac}",
        "altered expiry": f"{media_id}.{change_one(expires, len(expires) - 1)}.{mac}",
        "altered MAC": f"{media_id}.{expires}.{change_one(mac, 5)}",
        "expired": served.media.sign(media_id, int(time.time()) - 1),
        "not a token": "MBEIBR7DA1",
        "no MAC": f"{media_id}.{expires}",
        "non-ASCII MAC": f"{media_id}.{expires}.é{mac[1:]}",
        "superscript expiry": f"{media_id}.{expires[:-1]}².{mac}",
        "huge expiry": f"{media_id}.{'9' * 5000}.{mac}",
    }
    for why, bad in refused.items():
        response = httpx.get(f"{served.url}/media/{bad}.png")
        assert response.status_code == 403, f"{why}: {response.status_code}"
        assert response.content == b"forbidden"
    assert httpx.get(f"{served.url}/media/{gone}.png").status_code == 404, "signed but gone"
    assert httpx.get(f"{served.url}/media/").status_code == 404
    assert httpx.get(f"{served.url}/media/{token}.png").status_code == 200, "the real one works"


def test_when_the_image_cannot_be_drawn_the_flow_takes_on_error(served):
    message = card(served, code="漢" * 1000)  # 3000 bytes: more than a code holds at level M
    assert message["text"].endswith("its image could not be drawn.")
    assert message["image_url"] is None

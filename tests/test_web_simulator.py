"""The web simulator: its JSON API over real HTTP, and its page in a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.conftest import uic_plugins
from tests.test_qr import CODE, decode, qr_flow

import palabre_qr
from palabre import builtins
from palabre.config import Settings
from palabre.plugins import make_plugin_manager
from palabre.runtime.messages import Outbound
from palabre.web import simulator
from palabre.web.app import create_app
from palabre.web.simulator import WebSimulator

UIC = Path(__file__).parent.parent / "flows" / "uic.yaml"
UIC_ANSWERS = ["Bonjour", "Mbengue", "Ibrahima", "1997", "DA"]
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def app_for(tmp_path: Path, **options: str):
    options = {"PALABRE_SIMULATOR": "true", **options}
    settings = Settings(data_dir=tmp_path, secrets={"PALABRE_SECRET": "x"}, options=options)
    plugins = make_plugin_manager(uic_plugins(simulator), entry_points=False)
    return create_app([UIC], settings, plugins=plugins)


@pytest.fixture
def server(tmp_path, live_server):
    with live_server(app_for(tmp_path)) as running:
        yield running


def post(server, **body) -> httpx.Response:
    return httpx.post(f"{server.url}/web/messages", json=body)


def say(server, session: str, lang: str = "fr", **fields) -> list[dict]:
    response = post(server, flow="uic", lang=lang, session=session, **fields)
    assert response.status_code == 200, response.text
    return response.json()["messages"]


# -- the JSON API ---------------------------------------------------------------------------


def test_the_flows_are_listed_with_their_languages(server):
    flows = httpx.get(f"{server.url}/web/flows").json()
    assert [(f["id"], f["locales"], f["default_locale"]) for f in flows] == [
        ("uic", ["fr", "ar", "en"], "fr")
    ]
    assert flows[0]["title"] == "Unique Identifier Code (CIU)"


def test_a_whole_uic_conversation_reaches_its_code(server):
    session = str(uuid.uuid4())
    for text in UIC_ANSWERS:
        messages = say(server, session, text=text)
    gender = messages[-1]
    assert gender["language"] == "fr"
    assert gender["options"][:2] == [{"id": "1", "title": "Homme"}, {"id": "2", "title": "Femme"}]
    final = say(server, session, reply_id="1")
    assert "MBEIBR7DA1" in final[-1]["text"], "choosing 'Homme' should finish the code"


def test_the_chosen_language_is_used_from_the_first_message(server):
    messages = say(server, str(uuid.uuid4()), lang="ar", text="hello")
    assert {m["language"] for m in messages} == {"ar"}


def test_each_session_is_its_own_conversation(server):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    say(server, first, text="Bonjour")
    assert "2/5" in say(server, first, text="Mbengue")[-1]["text"]
    assert "1/5" in say(server, second, text="Bonjour")[-1]["text"], "a new tab starts afresh"


def test_a_message_sent_twice_is_processed_once_and_answered_alike(server):
    session, message_id = str(uuid.uuid4()), str(uuid.uuid4())
    first = say(server, session, text="Bonjour", id=message_id)
    assert "1/5" in first[-1]["text"]
    assert say(server, session, text="Bonjour", id=message_id) == first, "the same replies"
    assert "2/5" in say(server, session, text="Mbengue")[-1]["text"], "the turn ran once"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "JSON"),
        ("[1, 2]", "object"),
        ('{"flow": "nope", "lang": "fr", "session": "abcdefgh", "text": "hi"}', "unknown flow"),
        ('{"flow": "uic", "lang": "de", "session": "abcdefgh", "text": "hi"}', "unknown language"),
        ('{"flow": "uic", "lang": "fr", "session": "../x", "text": "hi"}', "session"),
        ('{"flow": "uic", "lang": "fr", "session": "abcdefgh"}', "text or a reply_id"),
        ('{"flow": "uic", "lang": "fr", "session": "abcdefgh", "text": 5}', "text must be"),
        ('{"flow": "uic", "lang": "fr", "session": "abcdefgh", "text": "a", "id": "a b"}', "id"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(server, body, reason):
    response = httpx.post(f"{server.url}/web/messages", content=body)
    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_a_body_over_32_kib_is_refused_413(server):
    body = b'{"flow": "uic", "lang": "fr", "session": "abcdefgh", "text": "' + b"a" * 33_000
    response = httpx.post(f"{server.url}/web/messages", content=body + b'"}')
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]


def test_text_over_4096_characters_is_refused(server):
    response = post(server, flow="uic", lang="fr", session="abcdefgh", text="a" * 4097)
    assert response.status_code == 400
    assert "4096" in response.json()["error"]


def test_the_page_and_its_files_carry_security_headers(server):
    for path in ["/", "/web/static/simulator.js", "/web/static/simulator.css"]:
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 200, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert "default-src 'self'" in response.headers["content-security-policy"], path
    page = httpx.get(f"{server.url}/").text
    assert "<script>" not in page and 'name="viewport"' in page


@pytest.mark.anyio
async def test_the_simulator_cannot_send_outside_a_reply():
    delivery = await WebSimulator().send(Outbound("web:x", "hi", "fr"))
    assert (delivery.provider_id, delivery.status) == (None, "failed")


# -- the page, in a real headless Chromium ------------------------------------------------


def needed(found: object, what: str) -> None:
    """Skip without `found` on a developer's machine; in CI (`CI` set) fail instead."""
    if found:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing: .ci/run and the test extras should provide it")
    pytest.skip(f"{what} is not installed")


@contextmanager
def phone_page(url: str, flow: str) -> Iterator[object]:
    """A phone-sized page of the simulator in Debian's Chromium (never a downloaded browser)."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    needed(Path(path).exists(), "Debian's chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    needed(sync_playwright, "Playwright's Python package (pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.goto(url)
            page.wait_for_selector(f"#flow option[value={flow}]", state="attached")
            yield page
        finally:
            browser.close()


@pytest.fixture
def phone(server) -> Iterator[object]:
    """The simulator on a phone, with the UIC flow."""
    with phone_page(server.url, "uic") as page:
        yield page


def type_message(page, text: str) -> None:
    count = page.locator(".bubble.bot").count()
    page.fill("#text", text)
    page.click("#send")
    page.locator(".bubble.bot").nth(count).wait_for()  # a locator: the page's CSP forbids eval


def test_a_phone_user_gets_a_uic_code_by_typing_and_tapping(phone, tmp_path):
    page = phone
    page.select_option("#flow", "uic")
    page.select_option("#lang", "fr")
    for text in UIC_ANSWERS:
        type_message(page, text)
    page.get_by_role("button", name="Homme").click()
    page.get_by_text("MBEIBR7DA1").wait_for()
    assert page.locator(".bubble.user").last.text_content() == "Homme"
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px wide)"
    page.screenshot(path=str(tmp_path / "simulator.png"), full_page=True)


def test_message_text_is_shown_as_text_never_as_html(phone):
    phone.select_option("#lang", "ar")
    type_message(phone, "<b>مرحبا</b>")
    assert phone.locator(".bubble.user").first.text_content() == "<b>مرحبا</b>"
    assert phone.locator("#log b").count() == 0
    assert phone.locator(".bubble.bot").first.get_attribute("dir") == "auto"
    assert phone.locator(".bubble.bot").first.get_attribute("lang") == "ar"


def direction(locator) -> str:
    return locator.evaluate("element => getComputedStyle(element).direction")


def test_arabic_runs_right_to_left_as_it_is_typed_and_once_sent(phone):
    phone.select_option("#lang", "ar")
    box = phone.locator("#text")
    assert box.get_attribute("dir") == "auto", "the input follows what is typed"
    box.fill("مرحبا")
    assert direction(box) == "rtl", "typed Arabic must run right to left"
    count = phone.locator(".bubble.bot").count()
    phone.click("#send")
    phone.locator(".bubble.bot").nth(count).wait_for()
    assert direction(phone.locator(".bubble.user").last) == "rtl"
    assert direction(phone.locator(".bubble.bot").last) == "rtl"
    box.fill("Hello")
    assert direction(box) == "ltr", "and Latin text left to right"


# -- images: the QR card flow's image, in the JSON and on the page ----------------------------


@pytest.fixture
def qr_server(tmp_path, live_server):
    settings = Settings(
        data_dir=tmp_path / "data",
        secrets={"PALABRE_SECRET": "x"},
        options={"PALABRE_SIMULATOR": "true"},
    )
    plugins = make_plugin_manager([builtins, palabre_qr, simulator], entry_points=False)
    with live_server(create_app([qr_flow(tmp_path)], settings, plugins=plugins)) as running:
        yield running


def test_a_reply_with_an_image_carries_its_relative_signed_url(qr_server):
    session = str(uuid.uuid4())
    asked = post(qr_server, flow="qr_card", lang="en", session=session, text="Hello").json()
    assert [m["image_url"] for m in asked["messages"]] == [None], "no image, said as null"
    answer = post(qr_server, flow="qr_card", lang="en", session=session, text=CODE).json()
    [card] = answer["messages"]
    assert card["text"] == f"Your code is {CODE}."
    assert card["image_url"].startswith("/media/") and card["image_url"].endswith(".png")
    assert decode(httpx.get(qr_server.url + card["image_url"]).content) == CODE


def test_the_page_allows_images_from_this_server_only(server):
    policy = httpx.get(f"{server.url}/").headers["content-security-policy"]
    assert "img-src 'self'" in policy


def test_a_phone_user_sees_the_qr_image_in_the_bot_bubble(qr_server, tmp_path):
    with phone_page(qr_server.url, "qr_card") as page:
        type_message(page, "Hello")
        type_message(page, CODE)
        image = page.locator(".bubble.bot img")
        image.wait_for()
        assert image.get_attribute("alt") == f"Your code is {CODE}."
        assert image.get_attribute("src").startswith("/media/")
        deadline = time.monotonic() + 5
        while not image.evaluate("img => img.complete && img.naturalWidth > 0"):
            assert time.monotonic() < deadline, "the image did not load (CSP or URL?)"
            time.sleep(0.05)
        assert image.evaluate("img => img.naturalWidth") == 290
        assert page.locator(".bubble.bot").last.text_content() == f"Your code is {CODE}."
        page.screenshot(path=str(tmp_path / "qr-card.png"), full_page=True)


def test_a_production_server_does_not_offer_the_simulator(tmp_path, live_server):
    with live_server(app_for(tmp_path, PALABRE_SIMULATOR="")) as server:
        paths = [("GET", "/"), ("GET", "/web/flows"), ("POST", "/web/messages")]
        paths += [("GET", "/web/static/simulator.js"), ("GET", "/web/static/index.html")]
        for method, path in paths:
            answer = httpx.request(method, f"{server.url}{path}", json={})
            assert answer.status_code == 404, path
            assert "PALABRE_SIMULATOR=true" in answer.text


def test_dev_mode_offers_the_simulator_without_the_setting(tmp_path, live_server):
    settings = Settings(data_dir=tmp_path, secrets={"PALABRE_SECRET": "x"})
    plugins = make_plugin_manager(uic_plugins(simulator), entry_points=False)
    app = create_app([UIC], settings, plugins=plugins, insecure_dev=True)
    with live_server(app) as server:
        assert httpx.get(f"{server.url}/web/flows").status_code == 200


def test_the_simulator_is_a_plugin_that_can_be_blocked(monkeypatch):
    monkeypatch.setenv("PALABRE_DISABLE_PLUGINS", "web")
    transports = make_plugin_manager().hook.register_transports()
    assert not any(isinstance(t, WebSimulator) for batch in transports for t in batch)

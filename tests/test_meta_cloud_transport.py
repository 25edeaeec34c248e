"""MetaCloudTransport's sends: a rate-limited reply retried in order, and images, uploaded
to `/media` and then sent by their media id (the text as caption when it fits), never
sent twice.

The fake Graph API is reached through httpx.ASGITransport (the webhook tests serve
Palabre for real on loopback). The fakes and helpers these tests share are in
`tests/meta_fakes.py`.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.conftest import uic_plugins
from tests.meta_fakes import (
    ACCESS_TOKEN,
    ALICE,
    ALICE_AT,
    PHONE_ID,
    UIC,
    Plugin,
    envelope,
    graph,
    graph_error,
    options,
    say,
    settings_for,
    started,
    transport,
    wait_until,
)
from tests.test_qr import CODE as QR_CODE
from tests.test_qr import decode as decode_qr
from tests.test_qr import qr_flow

import palabre.builtins
import palabre_meta_cloud
import palabre_qr
from palabre.plugins import make_plugin_manager
from palabre.runtime.messages import Outbound
from palabre.web.app import create_app
from palabre_meta_cloud import MetaCloudTransport
from palabre_qr.png import qr_png

__all__ = ["graph", "transport"]  # fixtures from tests/meta_fakes.py


def test_a_rate_limited_reply_is_retried_in_order(live_server, graph, tmp_path):
    graph.answers.append((400, graph_error(131056, "(#131056) Pair rate limit hit")))
    manager = make_plugin_manager(
        uic_plugins(Plugin(MetaCloudTransport(retry_delays=(0.05,)))),
        entry_points=False,
    )
    settings = settings_for(tmp_path, graph.url)
    app = create_app([UIC], settings, plugins=manager, http=graph.client())
    with live_server(app) as server, httpx.Client(base_url=server.url) as client:
        say(client, ALICE, "wamid.IN1", "Bonjour")
        wait_until(lambda: len(graph.requests) == 3)
    welcome, retried, question = graph.texts(ALICE)
    assert welcome == retried and question.startswith("1/5")


# -- images: a QR code uploaded to /media, then sent by its media id -----------------------


async def stored_qr(meta: MetaCloudTransport) -> tuple[str, bytes]:
    """Put the QR PNG in the transport's media store: its palabre media id and its bytes."""
    png = qr_png(QR_CODE)
    return await meta.host.stores.media.put(png, "image/png"), png


def upload_of(png: bytes) -> dict[str, Any]:
    """The upload request Meta documents: multipart file, type and messaging_product."""
    return {
        "path": f"/v21.0/{PHONE_ID}/media",
        "auth": f"Bearer {ACCESS_TOKEN}",
        "content_type": "multipart/form-data",
        "form": {
            "messaging_product": "whatsapp",
            "type": "image/png",
            "file": ("image.png", "image/png", png),
        },
    }


def sent(body: dict[str, Any]) -> dict[str, Any]:
    return {"path": f"/v21.0/{PHONE_ID}/messages", "auth": f"Bearer {ACCESS_TOKEN}", "json": body}


@pytest.mark.anyio
async def test_an_image_is_uploaded_then_sent_by_id_with_the_text_as_caption(transport, graph):
    media_id, png = await stored_qr(transport)
    delivery = await transport.send(
        Outbound(ALICE_AT, "Votre code : MBEIBR7DA1", "fr", image=media_id)
    )
    assert graph.requests == [
        upload_of(png),
        sent(envelope("image", {"id": "MEDIA1", "caption": "Votre code : MBEIBR7DA1"})),
    ]
    assert decode_qr(graph.requests[0]["form"]["file"][2]) == QR_CODE
    assert (delivery.provider_id, delivery.status) == ("wamid.OUT2", "queued")
    assert (await transport.host.stores.messages.get("wamid.OUT2")).status == "accepted"


@pytest.mark.anyio
async def test_with_options_the_image_has_no_caption_and_the_buttons_follow(transport, graph):
    media_id, png = await stored_qr(transport)
    question = Outbound(ALICE_AT, "Est-ce bien vous ?", "fr", options("Oui", "Non"), image=media_id)
    delivery = await transport.send(question)
    buttons = [
        {"type": "reply", "reply": {"id": "1", "title": "Oui"}},
        {"type": "reply", "reply": {"id": "2", "title": "Non"}},
    ]
    assert graph.requests == [
        upload_of(png),
        sent(envelope("image", {"id": "MEDIA1"})),
        sent(
            envelope(
                "interactive",
                {
                    "type": "button",
                    "body": {"text": "Est-ce bien vous ?"},
                    "action": {"buttons": buttons},
                },
            )
        ),
    ]
    assert delivery.provider_id == "wamid.OUT2", "the image's wamid, like a first part"


@pytest.mark.anyio
async def test_a_text_too_long_for_a_caption_follows_the_image(transport, graph):
    media_id, _ = await stored_qr(transport)
    await transport.send(Outbound(ALICE_AT, "x" * 1025, "fr", image=media_id))
    await transport.send(Outbound(ALICE_AT, "", "fr", image=media_id))
    assert [(b["type"], b.get("image"), b.get("text")) for b in graph.bodies()] == [
        ("image", {"id": "MEDIA1"}, None),
        ("text", None, {"preview_url": False, "body": "x" * 1025}),
        ("image", {"id": "MEDIA4"}, None),
    ]


@pytest.mark.parametrize(
    ("code", "retryable", "says"),
    [(130429, True, "retry later"), (190, False, "renew META_ACCESS_TOKEN"), (100, False, "100")],
)
@pytest.mark.anyio
async def test_upload_errors_are_handled_by_their_code(transport, graph, code, retryable, says):
    media_id, _ = await stored_qr(transport)
    graph.upload_answers.append((400, graph_error(code, f"(#{code}) Upload refused")))
    delivery = await transport.send(Outbound(ALICE_AT, "Votre code", "fr", image=media_id))
    assert (delivery.status, delivery.error_code) == ("failed", str(code))
    assert (delivery.retryable, says in delivery.detail) == (retryable, True)
    assert graph.bodies() == [], "no message without its image"


@pytest.mark.anyio
async def test_a_failure_after_the_image_is_retried_alone_and_never_resends_it(graph, tmp_path):
    graph.answers += [(200, {"messages": [{"id": "wamid.IMAGE"}]})]
    graph.answers += [(400, graph_error(131056, "(#131056) Pair rate limit hit"))] * 2
    settings = settings_for(tmp_path, graph.url)
    async with started(settings, tmp_path, (0.01,), http_transport=graph.asgi()) as meta:
        media_id, _ = await stored_qr(meta)
        question = Outbound(
            ALICE_AT, "Est-ce bien vous ?", "fr", options("Oui", "Non"), image=media_id
        )
        delivery = await meta.send(question)
    assert [b["type"] for b in graph.bodies()] == ["image", "interactive", "interactive"]
    assert (delivery.status, delivery.error_code) == ("failed", "131056")
    assert delivery.retryable is False, "retrying the whole would send the image twice"


@pytest.mark.anyio
async def test_an_expired_image_is_sent_as_text_only(transport, graph, caplog):
    await transport.send(Outbound(ALICE_AT, "Votre code", "fr", image="gone-or-purged"))
    assert graph.requests == [sent(envelope("text", {"preview_url": False, "body": "Votre code"}))]
    assert "image expired or unknown" in caplog.text


def test_the_qr_card_flow_delivers_its_image_through_the_webhook(live_server, graph, tmp_path):
    manager = make_plugin_manager(
        [palabre.builtins, palabre_meta_cloud, palabre_qr], entry_points=False
    )
    settings = settings_for(tmp_path, graph.url)
    app = create_app([qr_flow(tmp_path)], settings, plugins=manager, http=graph.client())
    with live_server(app) as server, httpx.Client(base_url=server.url) as client:
        say(client, ALICE, "wamid.Q1", "Hello")
        say(client, ALICE, "wamid.Q2", QR_CODE)
        wait_until(lambda: any(b["type"] == "image" for b in graph.bodies()))
    [upload] = graph.uploads()
    image = graph.bodies()[-1]
    assert image == envelope(
        "image", {"id": image["image"]["id"], "caption": f"Your code is {QR_CODE}."}
    )
    assert image["image"]["id"] == f"MEDIA{graph.requests.index(upload) + 1}"
    assert decode_qr(upload["form"]["file"][2]) == QR_CODE

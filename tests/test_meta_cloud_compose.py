"""The Graph API request bodies the transport composes: reply buttons, lists, numbered
text when options do not fit, images and templates, and the recipient (`to` for a
number, `recipient` for a business-scoped user id, never both).

The fake Graph API is reached through httpx.ASGITransport. The fakes and helpers these
tests share are in `tests/meta_fakes.py`.
"""

from __future__ import annotations

import pytest
from tests.meta_fakes import (
    ACCESS_TOKEN,
    ALICE_AT,
    BSUID,
    GENDER_ROWS,
    PHONE_ID,
    change,
    envelope,
    from_user,
    graph,
    logged,
    meta,
    notification,
    options,
    post,
    transport,
    wait_until,
)

from palabre.contacts import contact_hasher, contact_key
from palabre.render import as_plain_text
from palabre.runtime.messages import Outbound

__all__ = ["graph", "meta", "transport"]  # fixtures from tests/meta_fakes.py


@pytest.mark.anyio
async def test_up_to_three_options_are_reply_buttons(transport, graph):
    delivery = await transport.send(
        Outbound(ALICE_AT, "Êtes-vous d'accord ?", "fr", options("Oui", "Non"))
    )
    assert (delivery.provider_id, delivery.status) == ("wamid.OUT1", "queued")
    buttons = [
        {"type": "reply", "reply": {"id": "1", "title": "Oui"}},
        {"type": "reply", "reply": {"id": "2", "title": "Non"}},
    ]
    assert graph.requests == [
        {
            "path": f"/v21.0/{PHONE_ID}/messages",
            "auth": f"Bearer {ACCESS_TOKEN}",
            "json": envelope(
                "interactive",
                {
                    "type": "button",
                    "body": {"text": "Êtes-vous d'accord ?"},
                    "action": {"buttons": buttons},
                },
            ),
        }
    ]
    assert (await transport.host.stores.messages.get("wamid.OUT1")).status == "accepted"


@pytest.mark.anyio
async def test_four_to_ten_options_are_a_list(transport, graph):
    await transport.send(
        Outbound(ALICE_AT, "Genre ?", "fr", options("Homme", "Femme", "Trans", "Autre"))
    )
    await transport.send(Outbound(ALICE_AT, "Gender?", "sw", options(*"abcdefghij")))
    french, other = graph.bodies()
    assert french == envelope(
        "interactive",
        {
            "type": "list",
            "body": {"text": "Genre ?"},
            "action": {"button": "Choisir", "sections": [{"rows": GENDER_ROWS}]},
        },
    )
    assert len(other["interactive"]["action"]["sections"][0]["rows"]) == 10
    assert other["interactive"]["action"]["button"] == "☰"


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (Outbound(ALICE_AT, "Bonjour", "fr"), "text"),
        (Outbound(ALICE_AT, "Pick", "en", options(*"abcdefghijk")), "text"),  # 11: numbered
        (Outbound(ALICE_AT, "x" * 1025, "en", options("Yes", "No")), "text"),  # body too long
        (Outbound(ALICE_AT, "Pick", "en", options("A title of 22 letters!")), "list"),  # > 20
        (Outbound(ALICE_AT, "Pick", "en", options("A title longer than 24 letters")), "text"),
    ],
)
@pytest.mark.anyio
async def test_what_does_not_fit_falls_back(transport, graph, message, kind):
    await transport.send(message)
    body = graph.bodies()[0]
    assert body.get("interactive", {}).get("type", body["type"]) == kind
    if kind == "text":
        assert body["text"]["body"] == as_plain_text(message)


@pytest.mark.anyio
async def test_images_and_templates(transport, graph):
    await transport.send_image(ALICE_AT, media_id="1479537139650973", caption="Votre code")
    await transport.send_image(ALICE_AT, link="https://example.test/qr.png")
    parameters = [{"type": "body", "parameters": [{"type": "text", "text": "MBEIBR7DA1"}]}]
    await transport.send_template(ALICE_AT, "uic_reminder", "fr", parameters)
    assert graph.bodies() == [
        envelope("image", {"id": "1479537139650973", "caption": "Votre code"}),
        envelope("image", {"link": "https://example.test/qr.png"}),
        envelope(
            "template",
            {"name": "uic_reminder", "language": {"code": "fr"}, "components": parameters},
        ),
    ]
    with pytest.raises(ValueError, match="exactly one"):
        await transport.send_image(ALICE_AT)


@pytest.mark.anyio
async def test_a_template_text_parameter_goes_on_one_line_as_meta_requires(transport, graph):
    notice = "La sortie est reportée.\n\nPrévoir\tun pique-nique.     Merci."
    components = [
        {"type": "body", "parameters": [{"type": "text", "text": notice}, {"type": "text",
         "text": " 4e B "}]},
        {"type": "button", "sub_type": "url", "index": "0",
         "parameters": [{"type": "payload", "payload": "a\nb"}]},
    ]  # fmt: skip
    await transport.send_template(ALICE_AT, "school_notice", "fr", components)
    (sent,) = graph.bodies()
    body, button = sent["template"]["components"]
    texts = [parameter["text"] for parameter in body["parameters"]]
    assert texts == ["La sortie est reportée. Prévoir un pique-nique. Merci.", "4e B"]
    assert button["parameters"] == [{"type": "payload", "payload": "a\nb"}], "only text"
    assert components[0]["parameters"][0]["text"] == notice, "the step's own data is kept"


def test_a_contact_known_only_by_user_id_is_answered_at_it(meta, graph, tmp_path):
    contacts = [{"profile": {"name": "Someone", "username": "@someone"}, "user_id": BSUID}]
    first = change([from_user(BSUID, "wamid.U1", "Bonjour")])
    first["value"]["contacts"] = contacts
    assert post(meta, notification(first)).status_code == 200
    wait_until(lambda: len(graph.requests) == 2)
    assert post(meta, notification(change([from_user(BSUID, "wamid.U2", "Mbengue")]))).is_success
    wait_until(lambda: len(graph.requests) == 3)
    assert [b["recipient"] for b in graph.bodies()] == [BSUID] * 3, "never a `to`"
    assert graph.texts(BSUID)[1].startswith("1/5") and graph.texts(BSUID)[2].startswith("2/5")
    key = contact_key(contact_hasher(b"test-secret"), f"whatsapp-user:{BSUID}")
    assert logged(tmp_path, "wamid.OUT1").contact_key == key

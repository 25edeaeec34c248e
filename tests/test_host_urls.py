"""`Host.public_url`: the URL a provider called, behind a proxy, as Starlette reads it."""

from __future__ import annotations

from random import Random
from types import SimpleNamespace

from starlette.requests import Request

from palabre.transports import Host


def _request(path: str, query: bytes) -> Request:
    headers = [(b"host", b"127.0.0.1:8000")]
    scope = {"type": "http", "path": path, "query_string": query, "headers": headers}
    return Request({**scope, "scheme": "http", "server": ("127.0.0.1", 8000), "method": "POST"})


def test_the_public_url_is_the_public_base_plus_the_path_and_query_starlette_reads():
    """A bounded random loop over odd paths and queries, against Starlette's own URL."""
    rng = Random(7)
    alphabet = "aZ/?#\\%é &=+"
    host = Host(
        engine=None, settings=SimpleNamespace(public_url="https://bot.example.org/"), http=None
    )  # type: ignore[arg-type]
    for _ in range(500):
        path = "/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        query = "".join(rng.choice("ab=&%+é") for _ in range(rng.randint(0, 6))).encode()
        request = _request(path, query)
        wanted = "https://bot.example.org" + request.url.path
        wanted += f"?{request.url.query}" if request.url.query else ""
        assert host.public_url(_request(path, query)) == wanted, (path, query)


def test_a_query_that_is_not_utf8_still_gives_a_url():
    settings = SimpleNamespace(public_url="https://bot.example.org")
    host = Host(engine=None, settings=settings, http=None)  # type: ignore[arg-type]
    assert (
        host.public_url(_request("/twilio", b"a=\xff")) == "https://bot.example.org/twilio?a=\xff"
    )

#!/usr/bin/python3
"""The ws transport's HTTP side: the chat page at /, /healthz, /readyz, 404s, and
the WebSocket handshake with and without the confab.v1 subprotocol.

SPDX-License-Identifier: MIT
"""
import json

from confabtest import Suite, Client, check, note, http_get

suite = Suite("test_http", watchdog=120)
node = suite.broker("http", broker={"node_id": "http-node"})


@suite.test
def chat_page_is_served_at_root():
    """GET / -> 200 text/html, an HTML page that connects to /ws."""
    status, headers, body = http_get(node.start().port, "/")
    check(status == 200, "GET / -> %d" % status)
    ctype = headers.get("content-type", "")
    check(ctype.lower().startswith("text/html"), "GET /: content-type %r" % ctype)
    text = body.decode("utf-8", "replace")
    check("<html" in text.lower(), "GET /: no <html in the body: %r" % text[:200])
    check("/ws" in text, "GET /: the page does not mention /ws")
    note("GET / -> 200 %s, %d bytes" % (ctype, len(body)))


@suite.test
def healthz_says_ok():
    """GET /healthz -> 200 ok."""
    status, _, body = http_get(node.start().port, "/healthz")
    check(status == 200, "GET /healthz -> %d" % status)
    check(body.strip() == b"ok", "GET /healthz body %r, want ok" % body[:80])


@suite.test
def readyz_says_ok_while_the_node_takes_clients():
    """GET /readyz -> 200 ok (every plugin started, backplane up, not
    draining: test_drain_spread.py and test_redis_outage.py see the 503)."""
    status, _, body = http_get(node.start().port, "/readyz")
    check(status == 200, "GET /readyz -> %d" % status)
    check(body.strip() == b"ok", "GET /readyz body %r, want ok" % body[:80])


@suite.test
def unknown_path_is_404():
    """GET /nope -> 404."""
    status, _, _ = http_get(node.start().port, "/nope")
    check(status == 404, "GET /nope -> %d" % status)


@suite.test
async def client_offering_no_subprotocol_is_accepted():
    """A WebSocket client that offers no subprotocol gets a welcome."""
    c = await Client.connect(node.start().port, name="plain", subprotocols=None)
    check(c.ws.subprotocol is None, "server selected %r though none was offered" % c.ws.subprotocol)
    note("welcome: %s" % json.dumps(c.welcome))
    await c.ping()


@suite.test
async def client_offering_confab_v1_gets_it():
    """A client offering confab.v1 (alone or after another) gets confab.v1 selected."""
    for offer in (["confab.v1"], ["chat.other", "confab.v1"]):
        c = await Client.connect(node.start().port, name="v1", subprotocols=offer)
        check(c.ws.subprotocol == "confab.v1", "offered %r, selected %r" % (offer, c.ws.subprotocol))
        await c.ping()
        await c.close()
        note("offered %r -> confab.v1" % offer)


if __name__ == "__main__":
    suite.main()

#!/usr/bin/python3
"""Plugins built against older minors of ABI 1 still load and work in
this broker: fx_older_minor is an auth plugin built at ABI 1.0's sizes
(its answers end with `reason`: no permissions), fx_v1_2_auth one built at
1.2's (permissions and expiry from 1.1, no cancel slot from 1.3). Each
admits its user, who then chats with a second session of the same plugin;
the 1.2 plugin's room patterns are enforced.

SPDX-License-Identifier: MIT
"""
from confabtest import (Suite, Client, WS_SO, check, fixture, note)

suite = Suite("test_abi_compat", watchdog=120)

v1_0 = suite.broker("v1_0", broker={"plugins": [WS_SO, fixture("fx_older_minor")],
                                    "allow_anonymous": False},
                    sections={"fx_older_minor": {"user": "alice"}})
v1_2 = suite.broker("v1_2", broker={"plugins": [WS_SO, fixture("fx_v1_2_auth")],
                                    "allow_anonymous": False},
                    sections={"fx_v1_2_auth": {"user": "bob", "rooms": "lobby*"}})


async def chat(b, user, room):
    c, d = [await Client.connect(b.port, n) for n in ("first", "second")]
    for x in (c, d):
        check(x.user == user, "welcome names %r, want %s" % (x.user, user))
        await x.join(room)
    await c.say(room, "hello from an older plugin")
    await d.expect("message", room=room, body="hello from an older plugin")
    return c


@suite.test
async def a_plugin_built_for_abi_1_0_admits_and_its_users_chat():
    """fx_older_minor (ABI 1.0) admits alice twice; the two sessions chat."""
    v1_0.start()
    c = await chat(v1_0, "alice", "anything")
    await c.join("another-room")  # a 1.0 answer has no permissions: every room
    note("ABI 1.0 plugin: alice admitted, message delivered, no room limits")


@suite.test
async def a_plugin_built_for_abi_1_2_admits_with_its_permissions():
    """fx_v1_2_auth (ABI 1.2) admits bob with rooms lobby*: lobby-1 chats,
    sales is forbidden."""
    v1_2.start()
    c = await chat(v1_2, "bob", "lobby-1")
    await c.error({"type": "join", "room": "sales"}, "forbidden")
    note("ABI 1.2 plugin: bob admitted, lobby-1 delivered, sales forbidden")


if __name__ == "__main__":
    suite.main()

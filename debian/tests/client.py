#!/usr/bin/python3
# A client of an installed confabd for the autopkgtest: waits for /healthz,
# makes two WebSocket clients chat, and checks the allowlist example's
# answers. Every step is bounded in time; exit status 0 only when it held.
#
#   client.py healthz HOST:PORT       /healthz answers 200 within 10 s
#   client.py chat HOST:PORT          two clients join a room, one's message reaches the other
#   client.py allowlist HOST:PORT     ?user=alice is admitted as alice, ?user=eve gets 403
import asyncio
import json
import sys
import time
import urllib.error
import urllib.request

import websockets

TIMEOUT = 10


def healthz(addr):
    url = f"http://{addr}/healthz"
    deadline = time.monotonic() + TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    print(f"client: {url}: 200 {r.read().decode(errors='replace').strip()}")
                    return
                last = f"status {r.status}"
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.2)
    sys.exit(f"client: {url}: no 200 within {TIMEOUT} s ({last})")


async def frame(ws, kind):
    """The next frame of type `kind`, skipping others (member events)."""
    while True:
        msg = json.loads(await ws.recv())
        if msg.get("type") == kind:
            return msg
        if msg.get("type") == "error":
            raise RuntimeError(f"server error while waiting for {kind}: {msg}")


async def chat(addr):
    url = f"ws://{addr}/ws"
    async with websockets.connect(url) as a, websockets.connect(url) as b:
        ua = (await frame(a, "welcome"))["user"]
        ub = (await frame(b, "welcome"))["user"]
        for ws in (a, b):
            await ws.send(json.dumps({"type": "join", "room": "lobby", "ref": 1}))
            await frame(ws, "joined")
        await a.send(json.dumps({"type": "send", "room": "lobby", "body": "hello from a", "ref": 2}))
        ack = await frame(a, "ack")
        got = await frame(b, "message")
        if got.get("body") != "hello from a" or got.get("from") != ua or got.get("seq") != ack.get("seq"):
            raise RuntimeError(f"b got {got}, expected a's message (ack {ack})")
        print(f"client: {ub} received {ua}'s message in lobby (seq {got['seq']})")


async def allowlist(addr):
    url = f"ws://{addr}/ws"
    async with websockets.connect(url + "?user=alice") as a:
        user = (await frame(a, "welcome"))["user"]
        if user != "alice":
            raise RuntimeError(f"?user=alice was admitted as {user}")
    try:
        async with websockets.connect(url + "?user=eve"):
            raise RuntimeError("?user=eve was admitted")
    except websockets.exceptions.InvalidStatusCode as e:
        if e.status_code != 403:
            raise RuntimeError(f"?user=eve got HTTP {e.status_code}, expected 403") from e
    print("client: allowlist admitted alice and refused eve with 403")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("healthz", "chat", "allowlist"):
        sys.exit("usage: client.py healthz|chat|allowlist HOST:PORT")
    what, addr = sys.argv[1], sys.argv[2]
    if what == "healthz":
        healthz(addr)
        return
    step = chat if what == "chat" else allowlist
    try:
        asyncio.run(asyncio.wait_for(step(addr), TIMEOUT))
    except Exception as e:  # any failure is the test's answer, said in one line
        sys.exit(f"client: {what} {addr}: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()

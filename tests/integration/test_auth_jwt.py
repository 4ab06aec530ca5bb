#!/usr/bin/python3
"""The jwt auth plugin (docs/auth-jwt.md): who a token admits, which
tokens are refused at the handshake with 401, what its claims allow, and
where it sits in the auth chain.

SPDX-License-Identifier: MIT
"""
import asyncio
import re
import os
import time

import websockets
import websockets.exceptions

import confabtest
from confabtest import (Suite, Client, WS_SO, PLUGIN_BUILD_DIR, RECV_TIMEOUT, SCALE,
                        check, fixture, note, run_confabd, sanitizer_lines, tail,
                        write_config, write_text)
from jwttest import KeyPair, b64url, claims, token

JWT_SO = os.path.join(PLUGIN_BUILD_DIR, "jwt", ".libs", "jwt.so")
SECRET = "s3cr3t-for-confab-jwt-tests-0123456789"
FILE_SECRET = "another-secret-kept-in-a-file"

suite = Suite("test_auth_jwt", watchdog=300)
keys = {"rsa": KeyPair.rsa(), "ec": KeyPair.ec()}
KEYDIR = suite.tmp
RSA_PEM = os.path.join(KEYDIR, "rsa.pub.pem")
EC_PEM = os.path.join(KEYDIR, "ec.pub.pem")
SECRET_FILE = os.path.join(KEYDIR, "jwt.secret")
with open(RSA_PEM, "wb") as f:
    f.write(keys["rsa"].public_pem)
with open(EC_PEM, "wb") as f:
    f.write(keys["ec"].public_pem)
write_text(KEYDIR, "jwt.secret", FILE_SECRET + "\n")

# Every token a broker saw, to check that none reaches its log.
seen_tokens = []


def jwt_broker(name, jwt, allow_anonymous=False, chain=None):
    """A broker with ws and jwt (or `chain` after ws) and section [jwt]."""
    sections = {"jwt": jwt}
    if chain is None:
        chain = [JWT_SO]
    else:
        sections["fx_good_auth"] = {"user": "fallback"}
    return suite.broker(name, broker={"plugins": [WS_SO] + chain,
                                      "allow_anonymous": allow_anonymous},
                        sections=sections)


hs = jwt_broker("hs", {"secret": SECRET})  # HS256 only, leeway 30
multi = jwt_broker("multi", {"secret_file": SECRET_FILE, "algorithms": "HS256, HS384, HS512",
                             "leeway": 0, "issuer": "https://id.example",
                             "audience": "chat"})
rsa_b = jwt_broker("rsa", {"public_key_file": RSA_PEM})
ec_b = jwt_broker("ec", {"public_key_file": EC_PEM})
anon = jwt_broker("anon", {"secret": SECRET}, allow_anonymous=True)
chain_jwt_first = jwt_broker("chain_jwt_first", {"secret": SECRET},
                             chain=[JWT_SO, fixture("fx_good_auth")])
chain_fx_first = jwt_broker("chain_fx_first", {"secret": SECRET},
                            chain=[fixture("fx_good_auth"), JWT_SO])


async def connect(broker, tok=None, name="client", header=None, query=None):
    """Connect with `tok` in ?token= (or as `Authorization: Bearer` when
    header=True); returns the Client after its welcome."""
    broker.start()
    if tok is not None:
        seen_tokens.append(tok)
    if tok is not None and not header:
        query = "token=" + tok
    if tok is None or not header:
        return await Client.connect(broker.port, name=name, query=query or "")
    uri = "ws://127.0.0.1:%d/ws" % broker.port
    ws = await asyncio.wait_for(websockets.connect(
        uri, subprotocols=["confab.v1"], extra_headers={"Authorization": "Bearer " + tok},
        ping_interval=None, compression=None, open_timeout=RECV_TIMEOUT,
        close_timeout=RECV_TIMEOUT), RECV_TIMEOUT + 1)
    c = Client(ws, name)
    confabtest._open_clients.append(c)
    first = await c._read(RECV_TIMEOUT)
    check(first.get("type") == "welcome", "%s: first frame is not a welcome: %r" % (name, first))
    c.welcome, c.user = first, first.get("user")
    return c


async def admitted(broker, tok, user, **kw):
    c = await connect(broker, tok, **kw)
    check(c.user == user, "%s: welcome user %r, want %r" % (broker.name, c.user, user))
    return c


async def refused(broker, tok, what, status=401, reason=None, **kw):
    """The handshake with `tok` is refused with `status`; the log names
    the reason when given."""
    try:
        c = await connect(broker, tok, **kw)
    except websockets.exceptions.InvalidStatusCode as e:
        check(e.status_code == status, "%s: %s -> HTTP %d, want %d" % (
            broker.name, what, e.status_code, status))
    else:
        raise confabtest.TestFailure("%s: %s was admitted as %r; want HTTP %d" % (
            broker.name, what, c.user, status))
    if reason is not None:
        line = "denied 127.0.0.1: invalid token: " + reason
        deadline = time.monotonic() + RECV_TIMEOUT
        while line not in broker.stderr() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        check(line in broker.stderr(), "%s: %s: no log line %r\n%s" % (
            broker.name, what, line, tail(broker.stderr())))


def now():
    return int(time.time())


# ---- algorithms and keys -------------------------------------------------

@suite.test
async def valid_hs256_token_in_the_query_admits_its_sub():
    """?token= with an HS256 token signed with the secret: welcome user = sub."""
    await admitted(hs, token(claims("alice"), "HS256", SECRET), "alice")
    note("a percent-encoded token is decoded first")
    tok = token(claims("bob"), "HS256", SECRET)
    await admitted(hs, None, "bob", query="token=" + tok.replace(".", "%2E"))
    seen_tokens.append(tok)


@suite.test
async def valid_token_in_the_authorization_header_admits_its_sub():
    """Authorization: Bearer TOKEN works like ?token=."""
    await admitted(hs, token(claims("carol"), "HS256", SECRET), "carol", header=True)


@suite.test
async def valid_hs384_and_hs512_tokens_are_admitted_where_allowed():
    """algorithms = HS256, HS384, HS512 with secret_file: all three admit."""
    for alg in ("HS256", "HS384", "HS512"):
        await admitted(multi, token(claims("u-" + alg, iss="https://id.example", aud="chat"),
                                    alg, FILE_SECRET), "u-" + alg)


@suite.test
async def valid_rs256_and_es256_tokens_are_admitted():
    """RS256 against an RSA public key, ES256 (raw R||S) against an EC P-256 key."""
    await admitted(rsa_b, token(claims("rsa-user"), "RS256", keys["rsa"]), "rsa-user")
    await admitted(ec_b, token(claims("ec-user"), "ES256", keys["ec"]), "ec-user")


@suite.test
async def wrongly_signed_tokens_are_refused_401():
    """A token signed with another secret or key, or with its payload changed: 401."""
    await refused(hs, token(claims(), "HS256", "not-the-secret"), "HS256 other secret",
                  reason="bad signature")
    await refused(rsa_b, token(claims(), "RS256", KeyPair.rsa()), "RS256 other key",
                  reason="bad signature")
    await refused(ec_b, token(claims(), "ES256", KeyPair.ec()), "ES256 other key",
                  reason="bad signature")
    note("a payload swapped under a valid signature")
    good = token(claims("alice"), "HS256", SECRET).split(".")
    forged = b64url('{"sub":"admin","exp":%d}' % (now() + 300))
    await refused(hs, ".".join([good[0], forged, good[2]]), "swapped payload",
                  reason="bad signature")
    note("an ES256 signature in DER instead of R||S")
    h, p, s = token(claims(), "ES256", keys["ec"]).split(".")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec as ec_mod
    der = keys["ec"].private.sign((h + "." + p).encode(), ec_mod.ECDSA(hashes.SHA256()))
    await refused(ec_b, h + "." + p + "." + b64url(der), "ES256 DER signature")


@suite.test
async def algorithms_not_allowed_are_refused_401():
    """HS384 or RS256 where only HS256 is allowed, ES256 against an RSA key: 401."""
    await refused(hs, token(claims(), "HS384", SECRET), "HS384 (only HS256 allowed)",
                  reason="algorithm not allowed")
    await refused(hs, token(claims(), "RS256", keys["rsa"]), "RS256 (only HS256 allowed)",
                  reason="algorithm not allowed")
    await refused(rsa_b, token(claims(), "ES256", keys["ec"]), "ES256 on an RS256 broker",
                  reason="algorithm not allowed")
    await refused(hs, token(claims(), "PS256", SECRET, sign_as="HS256"), "unknown alg PS256",
                  reason="algorithm not allowed")


@suite.test
async def key_confusion_hs256_signed_with_the_public_key_is_refused():
    """The classic attack: an HS256 token whose HMAC key is the RSA (or EC)
    public key PEM, sent to a broker configured with that key only: 401."""
    for b, kp in ((rsa_b, keys["rsa"]), (ec_b, keys["ec"])):
        await refused(b, token(claims("admin"), "HS256", kp.public_pem), "HS256 with the PEM",
                      reason="algorithm not allowed")


@suite.test
async def alg_none_is_always_refused_401():
    """alg none, with an empty signature or any signature, and in other cases: 401."""
    for b in (hs, rsa_b):
        unsigned = token(claims("admin"), "none")
        check(unsigned.endswith("."), "an unsigned token ends with '.'")
        await refused(b, unsigned, "alg none, empty signature", reason="algorithm not allowed")
        await refused(b, unsigned + b64url(b"x" * 32), "alg none with a signature",
                      reason="algorithm not allowed")
        await refused(b, token(claims("admin"), "None", sign_as="none"), "alg None")
        await refused(b, token(claims("admin"), "NONE", sign_as="none"), "alg NONE")
    await refused(hs, token(claims("admin"), header={"alg": "none", "typ": "JWT"},
                            sign_as="HS256", key=SECRET), "alg none with an HMAC signature")


# ---- time ----------------------------------------------------------------

@suite.test
async def expired_beyond_the_leeway_is_refused_401():
    """exp 60 s ago with leeway 30: 401 "invalid token: expired"."""
    await refused(hs, token(claims(exp_in=-60), "HS256", SECRET), "expired token",
                  reason="expired")


@suite.test
async def expired_within_the_leeway_is_admitted():
    """exp 10 s ago with leeway 30: admitted, and kept for the rest of the leeway."""
    c = await admitted(hs, token(claims("late", exp_in=-10), "HS256", SECRET), "late")
    await c.ping()


@suite.test
async def not_yet_valid_is_refused_401():
    """nbf 120 s ahead with leeway 30: 401; nbf 10 s ahead: admitted."""
    await refused(hs, token(claims(nbf=now() + 120), "HS256", SECRET), "nbf in the future",
                  reason="not yet valid")
    await admitted(hs, token(claims("early", nbf=now() + 10), "HS256", SECRET), "early")


@suite.test
async def a_token_without_exp_is_admitted():
    """exp is optional."""
    await admitted(hs, token(claims("forever", exp_in=None), "HS256", SECRET), "forever")


@suite.test
async def bad_time_claims_are_refused_401():
    """exp or nbf that are not numbers: 401."""
    await refused(hs, token({"sub": "x", "exp": str(now() + 300)}, "HS256", SECRET),
                  "exp as a string")
    await refused(hs, token({"sub": "x", "nbf": None}, "HS256", SECRET), "nbf null")


@suite.test
async def the_session_closes_4001_when_exp_passes():
    """exp = now+3 with leeway 0: the session is closed with 4001 "token expired"."""
    c = await admitted(multi, token(claims("shortlived", exp_in=3, iss="https://id.example",
                                           aud="chat"), "HS256", FILE_SECRET), "shortlived")
    t0 = time.monotonic()
    try:
        while True:
            await asyncio.wait_for(c.ws.recv(), 8 * SCALE)
    except websockets.exceptions.ConnectionClosed:
        pass
    except asyncio.TimeoutError:
        raise confabtest.TestFailure("still open %.1fs after exp" % (time.monotonic() - t0))
    check(c.ws.close_code == 4001 and c.ws.close_reason == "token expired",
          "closed with %s %r, want 4001 'token expired'" % (c.ws.close_code, c.ws.close_reason))
    check(time.monotonic() - t0 < 6 * SCALE, "closed only after %.1fs" % (time.monotonic() - t0))


# ---- malformed tokens ----------------------------------------------------

@suite.test
async def malformed_tokens_are_refused_401():
    """Not three parts, bad base64url, bad JSON, duplicate keys, bad typ: 401."""
    good = token(claims(), "HS256", SECRET)
    h, p, s = good.split(".")

    def signed(hpart, ppart):
        from jwttest import sign
        return hpart + "." + ppart + "." + b64url(sign("HS256", SECRET,
                                                        (hpart + "." + ppart).encode()))
    cases = [
        ("one part", "abc", "not three dot-separated parts"),
        ("two parts", h + "." + p, "not three dot-separated parts"),
        ("four parts", good + ".xyz", "not three dot-separated parts"),
        ("empty parts", "..", None),
        ("padding in a part", h + "=." + p + "." + s, "bad base64url"),
        ("standard base64 chars", signed(h, p).replace(p, p[:-1] + "+"), "bad base64url"),
        ("a space", h + " ." + p + "." + s, None),
        ("header not JSON", signed(b64url("not json"), p), "bad JSON"),
        ("header a JSON array", signed(b64url('["HS256"]'), p), "bad JSON"),
        ("payload not JSON", signed(h, b64url("{sub:x}")), "bad JSON"),
        ("duplicate sub", signed(h, b64url('{"sub":"a","sub":"admin"}')), "bad JSON"),
        ("header without alg", signed(b64url('{"typ":"JWT"}'), p), "no alg"),
        ("typ JWE", signed(b64url('{"alg":"HS256","typ":"JWE"}'), p), "typ is not JWT"),
        ("crit header", signed(b64url('{"alg":"HS256","crit":["x"],"x":1}'), p),
         "unsupported crit header"),
        ("3000 bytes of garbage", "a" * 3000, "not three dot-separated parts"),
    ]
    for what, tok, reason in cases:
        note(what)
        await refused(hs, tok, what, reason=reason)
    note("typ JWT and no typ at all are both fine")
    await admitted(hs, signed(b64url('{"alg":"HS256"}'), p), "alice")


@suite.test
async def truncated_tokens_are_refused_401():
    """Every prefix of a valid token that still has three parts: 401."""
    good = token(claims("alice"), "HS256", SECRET)
    for cut in (1, 2, 5, 20, len(good.split(".")[2]) - 1):
        await refused(hs, good[:-cut], "truncated by %d" % cut)
    await refused(hs, good[:len(good) // 2], "cut in half")


@suite.test
async def bad_sub_is_refused_401():
    """No sub, an empty one, one with a space or a slash, a number, 65 bytes: 401."""
    for sub in (None, "", "a b", "a/b", 42, "x" * 65, "caf\u00e9"):
        c = claims()
        if sub is None:
            del c["sub"]
        else:
            c["sub"] = sub
        await refused(hs, token(c, "HS256", SECRET), "sub %r" % (sub,), reason="bad sub")
    await admitted(hs, token(claims("a.b:c-d_e@f"), "HS256", SECRET), "a.b:c-d_e@f")
    await admitted(hs, token(claims("x" * 64), "HS256", SECRET), "x" * 64)


# ---- issuer and audience -------------------------------------------------

@suite.test
async def wrong_issuer_or_audience_is_refused_401_right_ones_admitted():
    """issuer/audience configured: iss must equal, aud (string or array) must contain."""
    def t(**kw):
        return token(claims("ia", **kw), "HS256", FILE_SECRET)
    await refused(multi, t(iss="https://evil.example", aud="chat"), "wrong iss",
                  reason="wrong issuer")
    await refused(multi, t(aud="chat"), "no iss", reason="wrong issuer")
    await refused(multi, t(iss="https://id.example", aud="other"), "wrong aud",
                  reason="wrong audience")
    await refused(multi, t(iss="https://id.example", aud=["a", "b"]), "aud array without ours",
                  reason="wrong audience")
    await refused(multi, t(iss="https://id.example"), "no aud", reason="wrong audience")
    await admitted(multi, t(iss="https://id.example", aud="chat"), "ia")
    await admitted(multi, t(iss="https://id.example", aud=["web", "chat"]), "ia")


# ---- permissions ---------------------------------------------------------

@suite.test
async def rooms_claim_limits_rooms_by_glob():
    """rooms ["support-*", "lobby"]: support-1 and lobby are fine, sales is forbidden
    for join, send, history and presence."""
    c = await admitted(hs, token(claims("agent", rooms=["support-*", "lobby"]),
                                 "HS256", SECRET), "agent")
    await c.join("support-1")
    await c.join("lobby")
    await c.say("support-1", {"text": "hi"})
    await c.error({"type": "join", "room": "sales"}, "forbidden")
    await c.error({"type": "send", "room": "sales", "body": {"text": "x"}}, "forbidden")
    await c.error({"type": "history", "room": "sales"}, "forbidden")
    await c.error({"type": "presence", "room": "sales"}, "forbidden")
    await c.error({"type": "join", "room": "lobby2"}, "forbidden")


@suite.test
async def no_rooms_claim_means_every_room_and_empty_means_none():
    """Without rooms any room may be joined; rooms [] grants none."""
    c = await admitted(hs, token(claims("roamer"), "HS256", SECRET), "roamer")
    for room in ("sales", "support-9", "anything"):
        await c.join(room)
    d = await admitted(hs, token(claims("nobody", rooms=[]), "HS256", SECRET), "nobody")
    await d.error({"type": "join", "room": "lobby"}, "forbidden")
    await refused(hs, token(claims(rooms="lobby"), "HS256", SECRET), "rooms not an array",
                  reason="bad rooms or direct claim")
    await refused(hs, token(claims(rooms=["lobby", 3]), "HS256", SECRET), "rooms with a number",
                  reason="bad rooms or direct claim")


@suite.test
async def direct_claim_limits_direct_messages():
    """direct ["bob*"]: a direct to bob1 is acked, to carol is forbidden."""
    bob = await admitted(hs, token(claims("bob1"), "HS256", SECRET), "bob1", name="bob1")
    a = await admitted(hs, token(claims("dm", direct=["bob*"]), "HS256", SECRET), "dm")
    r = await a.request({"type": "direct", "to": "bob1", "body": {"text": "hi"}})
    check(r.get("type") == "ack", "direct to bob1 -> %s" % r)
    await bob.expect("direct", **{"from": "dm"})
    await a.error({"type": "direct", "to": "carol", "body": {"text": "hi"}}, "forbidden")


# ---- no token, and the chain ---------------------------------------------

@suite.test
async def no_token_is_ignored_and_allow_anonymous_decides():
    """No token: allow_anonymous=true admits a guest, false refuses 401;
    another Authorization scheme (Basic) counts as no token."""
    c = await connect(anon, None)
    check(c.user.startswith("guest-"), "anon: user %r, want guest-*" % c.user)
    await refused(hs, None, "no token, allow_anonymous=false")
    await refused(hs, None, "empty ?token=", query="token=")
    note("Authorization: Basic is not ours")
    anon.start()
    ws = await websockets.connect("ws://127.0.0.1:%d/ws" % anon.port,
                                  subprotocols=["confab.v1"], ping_interval=None,
                                  extra_headers={"Authorization": "Basic YTpi"})
    c = Client(ws, "basic")
    confabtest._open_clients.append(c)
    w = await c._read(RECV_TIMEOUT)
    check(w.get("user", "").startswith("guest-"), "Basic: welcome %r, want a guest" % w)


@suite.test
async def a_token_whose_sub_is_a_guest_name_is_refused_403():
    """A token whose sub is a connected guest's name (or any guest-..., in any case) is refused
    with HTTP 403 and a log line naming the plugin; the guest keeps its name and its session."""
    guest = await connect(anon, None, name="guest")
    check(re.fullmatch(r"guest-[0-9a-f]{16}", guest.user or ""), "guest named %r" % guest.user)
    for sub in (guest.user, "GUEST-0123456789abcdef", "guest-me"):
        await refused(anon, token(claims(sub), "HS256", SECRET), "sub %r" % sub, status=403)
        note("sub %r: HTTP 403" % sub)
    line = "plugin jwt allowed %s, a name in the guests' name space" % guest.user
    check(line in anon.stderr(), "no log line %r\n%s" % (line, tail(anon.stderr())))
    await guest.ping()
    other = await connect(anon, None, name="other guest")
    r = await other.request({"type": "direct", "to": guest.user, "body": "hi"})
    check(r.get("type") == "ack", "a direct message to the guest: %r" % r)
    await guest.expect("direct", body="hi")
    note("the guest %s still gets its direct messages" % guest.user)


@suite.test
async def chain_order_jwt_then_fixture():
    """ws, jwt, fx_good_auth: no token passes on to fx_good_auth (fallback);
    a valid token admits its sub; a bad token is denied before fx_good_auth."""
    await admitted(chain_jwt_first, None, "fallback")
    await admitted(chain_jwt_first, token(claims("tokuser"), "HS256", SECRET), "tokuser")
    await refused(chain_jwt_first, token(claims(), "HS256", "wrong"), "bad token",
                  reason="bad signature")


@suite.test
async def chain_order_fixture_then_jwt():
    """ws, fx_good_auth, jwt: fx_good_auth allows first; jwt is never asked."""
    await admitted(chain_fx_first, token(claims("tokuser"), "HS256", SECRET), "fallback")
    await admitted(chain_fx_first, token(claims(), "HS256", "wrong"), "fallback")
    check("denied" not in chain_fx_first.stderr(), "jwt was asked:\n" + tail(
        chain_fx_first.stderr()))


# ---- the log, and configuration errors ---------------------------------

@suite.test
def the_log_holds_no_token_and_no_secret():
    """Neither a token (nor its signature) nor a secret appears in any broker's stderr."""
    check(len(seen_tokens) > 20, "only %d tokens were tried" % len(seen_tokens))
    for b in suite.brokers:
        text = b.stderr()
        for secret in (SECRET, FILE_SECRET):
            check(secret not in text, "%s: the secret is in the log" % b.name)
        for tok in seen_tokens:
            parts = [x for x in tok.split(".") if len(x) >= 16]
            for part in parts:
                check(part not in text, "%s: a token part %r is in the log\n%s" % (
                    b.name, part[:40], tail(text)))


def config_case(name, jwt):
    d = os.path.join(suite.tmp, "cfg-" + name)
    os.makedirs(d, exist_ok=True)
    return write_config(d, {"node_id": name, "plugins": [WS_SO, JWT_SO]},
                        {"ws": {"listen": "127.0.0.1:0"}, "jwt": jwt})


@suite.test
def configuration_errors_name_the_key():
    """confabd -t exits 1 with one line naming [jwt] and the key."""
    cases = [
        ("bad_algorithm", {"secret": SECRET, "algorithms": "HS256, XS999"}, "algorithms"),
        ("alg_none", {"secret": SECRET, "algorithms": "none"}, "algorithms"),
        ("no_key", {"algorithms": "HS256"}, "secret"),
        ("hs_without_secret", {"public_key_file": RSA_PEM, "algorithms": "HS256"},
         "algorithms"),
        ("rs_without_key", {"secret": SECRET, "algorithms": "RS256"}, "algorithms"),
        ("es_with_rsa_key", {"public_key_file": RSA_PEM, "algorithms": "ES256"}, "algorithms"),
        ("unreadable_key", {"public_key_file": os.path.join(KEYDIR, "missing.pem")},
         "public_key_file"),
        ("not_pem", {"public_key_file": SECRET_FILE}, "public_key_file"),
        ("unreadable_secret_file", {"secret_file": os.path.join(KEYDIR, "missing")},
         "secret_file"),
        ("secret_and_file", {"secret": SECRET, "secret_file": SECRET_FILE}, "secret_file"),
        ("empty_secret", {"secret": ""}, "secret"),
        ("bad_leeway", {"secret": SECRET, "leeway": "-1"}, "leeway"),
        ("unknown_key", {"secret": SECRET, "secrett": "x"}, "secrett"),
    ]
    for name, jwt, key in cases:
        r = run_confabd(["-t", "-c", config_case(name, jwt)])
        check(r.code == 1, "%s: want exit 1\n%s" % (name, r.describe()))
        lines = [l for l in r.stderr.splitlines() if "[jwt] %s" % key in l]
        check(len(lines) == 1, "%s: want one line naming [jwt] %s\n%s" % (
            name, key, r.describe()))
        check(SECRET not in r.stderr and FILE_SECRET not in r.stderr,
              "%s: the secret is in the output" % name)
        check(not sanitizer_lines(r.stderr), "%s: sanitizer report\n%s" % (name, r.describe()))
    note("a good configuration passes -t")
    r = run_confabd(["-t", "-c", config_case("good", {
        "secret": SECRET, "public_key_file": EC_PEM, "algorithms": "HS256,ES256"})])
    check(r.code == 0, "good config: " + r.describe())


if __name__ == "__main__":
    suite.main()

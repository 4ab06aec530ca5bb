"""JSON Web Tokens for confab's jwt tests, written by hand so that broken
ones are as easy to make as good ones.

  b64url(bytes)                    unpadded base64url
  token(header, claims, alg, key)  header.payload.signature; header and
                                   claims are dicts (or bytes, used as is)
  sign(alg, key, data)             the JWS signature of `data`
  KeyPair.rsa() / KeyPair.ec()     a fresh RSA-2048 or EC P-256 key pair,
                                   with .public_pem (bytes) to write out

HS* use hmac/hashlib; RS256 and ES256 use python3-cryptography.

SPDX-License-Identifier: MIT
"""
import base64
import hashlib
import hmac
import json
import time

from confabtest import skip

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
except ImportError:
    skip("the python3 cryptography module is not installed (apt-get install python3-cryptography)")

_HS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _part(obj):
    if isinstance(obj, (bytes, str)):
        return b64url(obj)
    return b64url(json.dumps(obj, separators=(",", ":")))


class KeyPair:
    def __init__(self, private, alg):
        self.private = private
        self.alg = alg
        self.public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    @classmethod
    def rsa(cls, bits=2048):
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits), "RS256")

    @classmethod
    def ec(cls):
        return cls(ec.generate_private_key(ec.SECP256R1()), "ES256")


def sign(alg, key, data):
    """The signature of `data` (bytes) by `alg`: key is the HMAC secret
    (bytes or str) for HS*, a KeyPair for RS256/ES256, ignored for none."""
    if alg in _HS:
        if isinstance(key, str):
            key = key.encode()
        return hmac.new(key, data, _HS[alg]).digest()
    if alg == "RS256":
        return key.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if alg == "ES256":
        der = key.private.sign(data, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg == "none":
        return b""
    raise ValueError("unknown alg " + alg)


def token(claims, alg="HS256", key=None, header=None, sign_as=None):
    """A compact JWS. `header` defaults to {"alg": alg, "typ": "JWT"};
    `sign_as` signs with another algorithm than the header names."""
    if header is None:
        header = {"alg": alg, "typ": "JWT"}
    signing_input = _part(header) + "." + _part(claims)
    sig = sign(sign_as or alg, key, signing_input.encode("ascii"))
    return signing_input + "." + b64url(sig)


def claims(sub="alice", exp_in=300, **extra):
    """Claims for `sub` expiring in `exp_in` seconds (None: no exp)."""
    c = {"sub": sub, "iat": int(time.time())}
    if exp_in is not None:
        c["exp"] = int(time.time()) + exp_in
    c.update(extra)
    return c

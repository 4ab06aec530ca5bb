"""Helpers for the tests of TLS between confabd and Redis (issue 11).

  Certificates   CAs and certificates made at test time with the openssl
                 command (OPENSSL, default `openssl`) in the test's temp dir:
                   ca1, ca2       two CAs (ca2 signs nothing the servers use)
                   server         for DNS:localhost and IP:127.0.0.1, from ca1
                   expired        the same names, from ca1, expired yesterday
                   client         a client certificate from ca1
                   client2        a client certificate from ca2
                 each as NAME.crt and NAME.key (EC P-256, no passphrase)
  TlsRedisServer a RedisServer with --port 0 (no plain port) and
                 --tls-port on its reserved port; auth_clients="yes" wants a
                 client certificate from ca1; ping() and cli() speak TLS

SPDX-License-Identifier: MIT
"""
import os
import shutil
import socket
import ssl
import subprocess

from confabtest import SCALE, TestFailure, check, skip, spawn, tail
from redistest import REDIS_CLI, RedisServer, _program, _setting

OPENSSL = _setting("OPENSSL", "openssl")

_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = confab test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[server]
basicConstraints = CA:FALSE
subjectAltName = DNS:localhost,IP:127.0.0.1
[client]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
"""

_SCRIPT = r"""set -e
key() { n=$1; shift; "$O" req -config c.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $n.key "$@"; }
sign() { "$O" x509 -req -in $1.csr -CA $4.crt -CAkey $4.key -CAcreateserial -extfile c.cnf -extensions $2 -days $3 -out $1.crt; }
key ca1 -x509 -extensions ca -days 2 -subj /CN=ca1 -out ca1.crt
key ca2 -x509 -extensions ca -days 2 -subj /CN=ca2 -out ca2.crt
key server -subj /CN=localhost -out server.csr; sign server server 2 ca1
key expired -subj /CN=localhost -out expired.csr; sign expired server -1 ca1
key client -subj /CN=client -out client.csr; sign client client 2 ca1
key client2 -subj /CN=client2 -out client2.csr; sign client2 client 2 ca2
"""


def openssl_available():
    return _program(OPENSSL) is not None


# Every script that uses this module makes certificates.
if not openssl_available():
    skip("openssl not found (%s): apt-get install openssl, or set OPENSSL" % OPENSSL)


class Certificates:
    """The CAs and certificates above, in DIR/certs."""

    NAMES = ("ca1", "ca2", "server", "expired", "client", "client2")

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "certs")

    def make(self):
        if os.path.exists(self.crt("client2")):
            return self
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "c.cnf"), "w") as f:
            f.write(_CNF)
        env = dict(os.environ, O=_program(OPENSSL) or OPENSSL)
        p = subprocess.run(["sh", "-c", _SCRIPT], cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        check(p.returncode == 0, "making the test certificates with %s failed:\n%s"
              % (OPENSSL, tail(p.stdout.decode("utf-8", "replace"))))
        for n in self.NAMES:
            check(os.path.exists(self.crt(n)) and os.path.exists(self.key(n)),
                  "no %s after making the certificates" % self.crt(n))
        return self

    def crt(self, name):
        return os.path.join(self.dir, name + ".crt")

    def key(self, name):
        return os.path.join(self.dir, name + ".key")

    def context(self, ca="ca1", client=None, verify=True):
        """An ssl.SSLContext for a client of the test servers."""
        ctx = ssl.create_default_context(cafile=self.crt(ca))
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if client:
            ctx.load_cert_chain(self.crt(client), self.key(client))
        return ctx


class TlsRedisServer(RedisServer):
    """redis-server with TLS only (--port 0) on its reserved port: the
    certificate `cert` ("server" or "expired"), CA ca1 for client
    certificates, `auth_clients` "no" or "yes" (then a client must show a
    certificate from ca1), optionally `password` and `protocols`
    ("TLSv1.2")."""

    def __init__(self, tmp, certs, name="redis-tls", cert="server", auth_clients="no",
                 password=None, protocols=None):
        super().__init__(tmp, name)
        self.certs = certs
        self.cert = cert
        self.auth_clients = auth_clients
        self.password = password
        self.protocols = protocols

    @property
    def tls_port(self):
        return self.port

    def argv(self):
        a = super().argv()
        i = a.index("--port")
        a[i + 1] = "0"
        a += ["--tls-port", str(self.port),
              "--tls-cert-file", self.certs.crt(self.cert),
              "--tls-key-file", self.certs.key(self.cert),
              "--tls-ca-cert-file", self.certs.crt("ca1"),
              "--tls-auth-clients", self.auth_clients]
        if self.password:
            a += ["--requirepass", self.password]
        if self.protocols:
            a += ["--tls-protocols", self.protocols]
        return a

    def start(self, timeout=None):
        self.certs.make()
        return super().start() if timeout is None else super().start(timeout)

    def ping(self):
        """PING over TLS (the client certificate when the server wants
        one; no verification of an expired server certificate)."""
        ctx = self.certs.context(client="client" if self.auth_clients == "yes" else None,
                                 verify=self.cert != "expired")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    if self.password:
                        s.sendall(b"AUTH %s\r\n" % self.password.encode())
                        s.recv(64)
                    s.sendall(b"PING\r\n")
                    data = s.recv(64).decode("ascii", "replace").strip()
                    return data[1:] if data.startswith("+") else (data or "no answer")
        except (OSError, ssl.SSLError) as e:
            return str(e)

    def cli(self, *args, timeout=10.0 * SCALE):
        """redis-cli --tls with ca1 (and the client certificate if wanted)."""
        prog = _program(REDIS_CLI)
        check(prog is not None, "redis-cli is needed for TlsRedisServer.cli")
        argv = [prog, "--tls", "--cacert", self.certs.crt("ca1"), "-h", "localhost",
                "-p", str(self.port)]
        if self.auth_clients == "yes":
            argv += ["--cert", self.certs.crt("client"), "--key", self.certs.key("client")]
        if self.password:
            argv += ["--no-auth-warning", "-a", self.password]
        argv += [str(a) for a in args]
        p = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise TestFailure("`%s` did not finish within %.0fs" % (" ".join(argv), timeout))
        out = out.decode("utf-8", "replace").strip()
        check(p.returncode == 0, "`%s` exited %s: %s %s" % (
            " ".join(argv), p.returncode, out, err.decode("utf-8", "replace").strip()))
        return out


def have(program):
    return shutil.which(program) is not None

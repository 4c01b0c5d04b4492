"""TLS certificate fixtures shared by test_tls_connect.py and
test_tls_serve.py (not a test file): `Certs()` makes a CA, leaves and a
client certificate with the openssl command in a temporary directory.
"""

import hashlib
import os
import subprocess

from harness import run, tempdir


# -- certificates -------------------------------------------------------------

CA_CNF = """[ ca ]
default_ca = d
[ d ]
database = %(d)s/index.txt
serial = %(d)s/serial
new_certs_dir = %(d)s
default_md = sha256
policy = p
unique_subject = no
[ p ]
commonName = supplied
[ ext ]
subjectAltName = %(san)s
"""


def openssl(*args, cwd):
    r = run(["openssl"] + list(args), timeout=20)
    assert r.returncode == 0, r
    return r


class Certs:
    """PEM files in a temp dir: NAME.pem and NAME.key for each of ca, ca2,
    leaf (localhost, 127.0.0.1), other (other.test), expired, notyet, self
    (self-signed localhost), client (from ca)."""

    def __init__(self):
        self.dir = d = tempdir()
        p = self.path
        for ca, cn in (("ca", "Test CA"), ("ca2", "Other CA")):
            openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", p(ca + ".key"),
                    "-out", p(ca + ".pem"), "-days", "30", "-subj", "/CN=" + cn,
                    cwd=d)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("self.key"),
                "-out", p("self.pem"), "-days", "30", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", cwd=d)
        os.mkdir(p("db"))
        open(p("db/index.txt"), "w").close()
        with open(p("db/serial"), "w") as f:
            f.write("1000\n")
        leaves = [
            ("leaf", "localhost", "DNS:localhost,IP:127.0.0.1", None),
            ("other", "other.test", "DNS:other.test", None),
            ("expired", "localhost", "DNS:localhost,IP:127.0.0.1",
             ("20200101000000Z", "20210101000000Z")),
            ("notyet", "localhost", "DNS:localhost,IP:127.0.0.1",
             ("20400101000000Z", "20410101000000Z")),
            ("client", "client", "DNS:client", None),
        ]
        for name, cn, san, dates in leaves:
            with open(p("ca.cnf"), "w") as f:
                f.write(CA_CNF % {"d": p("db"), "san": san})
            openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", p(name + ".key"), "-out", p(name + ".csr"),
                    "-subj", "/CN=" + cn, cwd=d)
            start_end = (["-startdate", dates[0], "-enddate", dates[1]] if dates
                         else ["-days", "30"])
            openssl("ca", "-batch", "-config", p("ca.cnf"), "-in", p(name + ".csr"),
                    "-cert", p("ca.pem"), "-keyfile", p("ca.key"), "-extensions",
                    "ext", "-notext", "-out", p(name + ".pem"), *start_end, cwd=d)

    def path(self, name):
        return os.path.join(self.dir, name)

    def pin(self, name):
        """sha256:HEX of the certificate's SubjectPublicKeyInfo, as curl's
        --pinnedpubkey computes it (openssl x509 -pubkey | pkey -outform der)."""
        pub = openssl("x509", "-in", self.path(name + ".pem"), "-pubkey", "-noout",
                      cwd=self.dir).stdout
        p = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"],
                           input=pub, stdout=subprocess.PIPE, timeout=10, check=True)
        return "sha256:" + hashlib.sha256(p.stdout).hexdigest()

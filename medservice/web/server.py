"""Running the HTTP face beside the gRPC server, in the same process.

uvicorn serves the ASGI application on its own event loop in one thread; the application
calls the gRPC server over a Unix socket in a private directory (not the public port: that
may be TLS, or bound to an address this process cannot reach by name).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import uvicorn

from medservice.web.app import HttpApi

CHANNELS = 4  # connections to the gRPC server; event streams are spread over them


class HttpListenError(Exception):
    """MEDSERVICE_HTTP_LISTEN cannot be used: said in one line."""


def add_internal_port(server: grpc.Server) -> tuple[str, Path]:
    """An insecure gRPC port on a Unix socket only this user can reach; its target and
    directory (removed at stop). Call before the server starts."""
    directory = Path(tempfile.mkdtemp(prefix="medservice-"))  # mode 0700
    target = f"unix:{directory / 'grpc.sock'}"
    if server.add_insecure_port(target) == 0:
        raise HttpListenError(f"cannot open the internal socket in {directory}")
    return target, directory


def _bind(listen: str, reuse_port: bool = False) -> socket.socket:
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise HttpListenError(f"cannot serve HTTP on {listen!r}: give HOST:PORT, e.g. "
                              "127.0.0.1:8080, or an empty MEDSERVICE_HTTP_LISTEN for none")
    host = host.strip("[]") or "0.0.0.0"
    try:
        sock = socket.create_server((host, int(port_text)),
                                    family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                    reuse_port=reuse_port)
    except OSError as e:
        hint = (" (is medservice already running? set MEDSERVICE_HTTP_LISTEN)"
                if e.errno == 98 else "")
        raise HttpListenError(f"cannot serve HTTP on {listen}: {e.strerror}{hint}") from None
    # Accepted connections inherit it. asyncio sets it only on sockets made with proto
    # IPPROTO_TCP, which create_server's are not: without it, a response's headers and
    # body (two writes) met the client's delayed ACK and every call took 40 ms more.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@dataclass
class HttpServer:
    port: int
    app: HttpApi
    _server: uvicorn.Server
    _thread: threading.Thread
    _directory: Path

    def begin_stop(self) -> None:
        """Take no new connections; open event streams end when the gRPC server stops."""
        self._server.should_exit = True

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        shutil.rmtree(self._directory, ignore_errors=True)


def start_http(listen: str, app: HttpApi, target: str, directory: Path,
               grace_seconds: float, tls: tuple[str, str] | None = None, *,
               reuse_port: bool = False) -> HttpServer:
    """Serve `app` on `listen`; HTTPS with the (certificate, key) files in `tls`.
    `reuse_port`: the `serve --workers` processes share the port, as they share gRPC's."""
    sock = _bind(listen, reuse_port)
    cert, key = tls or (None, None)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                            server_header=False, ssl_certfile=cert, ssl_keyfile=key,
                            timeout_graceful_shutdown=max(1, int(grace_seconds)))
    server = uvicorn.Server(config)

    async def run() -> None:
        # Distinct channel arguments, so that each is its own connection (gRPC shares a
        # subchannel between channels made alike).
        # An answer's size is limited by the server alone (its default: none), as the HTTP
        # client cannot raise a gRPC client's 4 MiB default.
        app.channels = [grpc.aio.insecure_channel(target, options=[
            ("medservice.channel", i), ("grpc.max_receive_message_length", -1)])
            for i in range(CHANNELS)]
        try:
            await server.serve(sockets=[sock])
        finally:
            for channel in app.channels:
                await channel.close()
            sock.close()

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        raise HttpListenError(f"the HTTP server did not start on {listen}")
    return HttpServer(sock.getsockname()[1], app, server, thread, directory)

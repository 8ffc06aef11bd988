"""`medservice serve`, plus an echo RPC on the same stack, for the round-call benchmark.

Run as `python -m bench.round_server` with the MEDSERVICE_* environment a user would set
(README); it serves exactly as `medservice serve` does (settings, migrations on SQLite,
settled heap, sweeper, alert feed) and adds /medservice.bench.Echo/Echo, which goes through
the same interceptor (authentication, log context) and thread pool, but is not audited and
touches no database: the floor an authenticated call of this stack costs. And
/medservice.v1.BenchAudit/Echo, the same echo under the API's audited prefix: the
interceptor writes its audit event as it does for every API call (a read's goes through
the group commit, as CheckDose's does), the floor of any call the service may answer.
Prints "PORT <n>" once serving.
"""

from __future__ import annotations

import sys

import grpc

from medservice.logs import configure_logging
from medservice.settings import load_settings
from medservice.store.migrate import upgrade

ECHO_METHOD = "/medservice.bench.Echo/Echo"
AUDITED_ECHO_METHOD = "/medservice.v1.BenchAudit/Echo"


def echo_handlers() -> list[grpc.GenericRpcHandler]:
    echo = {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request)}
    return [grpc.method_handlers_generic_handler("medservice.bench.Echo", echo),
            grpc.method_handlers_generic_handler("medservice.v1.BenchAudit", echo)]


def main() -> int:
    from medservice.server import serve

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    if settings.is_sqlite:
        upgrade(settings.database_url)  # as `medservice serve` does on SQLite

    def ready(running: object) -> None:
        print(f"PORT {getattr(running, 'port', 0)}", flush=True)

    serve(settings, on_ready=ready, extra_handlers=echo_handlers())
    return 0


if __name__ == "__main__":
    sys.exit(main())

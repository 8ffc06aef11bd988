"""`medservice serve`, plus an echo RPC on the same stack, for the round-call benchmark.

Run as `python -m bench.round_server` with the MEDSERVICE_* environment a user would set
(README); it serves exactly as `medservice serve` does (settings, migrations on SQLite,
settled heap, sweeper, alert feed) and adds /medservice.bench.Echo/Echo, which goes through
the same interceptor (authentication, log context) and thread pool, but is not audited and
touches no database: the floor an authenticated call of this stack costs. And
/medservice.v1.BenchAudit/Echo, the same echo under the API's audited prefix: the
interceptor writes its audit event as it does for every API call (a read's goes through
the group commit, as CheckDose's does), the floor of any call the service may answer.
Under the same prefix, Read and Write: the floor of a call that reads the store (the
resident's head, the one row CheckDose's one statement starts from, without the records it
joins, in a read unit of work) and of one
that writes (a write unit of work that commits only the call's audit event). Both use the
service's units of work on an engine of their own for the same database (serve() keeps its
engine to itself): the same statements and kind of pool (its connections count in the
server's RSS once these phases ran), only not shared with the service's calls.
Prints "PORT <n>" once serving.
"""

from __future__ import annotations

import sys

import grpc

from medservice.api.audit_capture import pending_audit
from medservice.domain import names
from medservice.logs import configure_logging
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.settings import load_settings
from medservice.store.db import make_engine
from medservice.store.migrate import upgrade
from medservice.store.uow import uow_factory

ECHO_METHOD = "/medservice.bench.Echo/Echo"
AUDITED_ECHO_METHOD = "/medservice.v1.BenchAudit/Echo"
AUDITED_READ_METHOD = "/medservice.v1.BenchAudit/Read"
AUDITED_WRITE_METHOD = "/medservice.v1.BenchAudit/Write"


def echo_handlers(uow: UnitOfWorkFactory | None = None) -> list[grpc.GenericRpcHandler]:
    echo = {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request)}
    audited = dict(echo)
    if uow is not None:
        def unit(*, write: bool) -> UnitOfWork:
            made = uow(write=write)
            made.audit_draft = pending_audit.get()  # as the API's units of work have it
            return made

        def read(request: bytes, context: object) -> bytes:
            # The resident's head (CheckDose's one statement joins its records to it) in a
            # read unit of work: the floor of any call that asks the store about a resident.
            facility_id, resident_id = names.parse_resident_name(request.decode(), "resident")
            with unit(write=False) as u:
                head = u.cards.round_head(facility_id, resident_id)
            return b"" if head is None else head.facility_etag.encode()

        def write(request: bytes, context: object) -> bytes:
            # A write unit of work that commits nothing but the call's audit event: the
            # floor of any call that writes (RecordDose commits its event with its record).
            with unit(write=True) as u:
                u.commit()
            return b""

        audited["Read"] = grpc.unary_unary_rpc_method_handler(read)
        audited["Write"] = grpc.unary_unary_rpc_method_handler(write)
    return [grpc.method_handlers_generic_handler("medservice.bench.Echo", echo),
            grpc.method_handlers_generic_handler("medservice.v1.BenchAudit", audited)]


def main() -> int:
    from medservice.server import serve

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    if settings.is_sqlite:
        upgrade(settings.database_url)  # as `medservice serve` does on SQLite

    def ready(running: object) -> None:
        print(f"PORT {getattr(running, 'port', 0)}", flush=True)

    uow = uow_factory(make_engine(settings.database_url))
    serve(settings, on_ready=ready, extra_handlers=echo_handlers(uow))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Per-call plumbing: authentication, log context, error mapping and idempotent writes.

The interceptor authenticates every call (health and reflection excepted) and binds the
log context; the `rpc` decorator checks the role and maps errors, so servicer methods stay
a few lines: convert the request, call one use case, convert the result.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import grpc
import structlog
from google.protobuf.message import Message
from google.rpc import code_pb2

from medservice.api.audit_capture import AuditRecorder, address_created
from medservice.api.auth import TokenVerifier
from medservice.api.errors import internal_status, simple_status, status_for
from medservice.domain.access import Principal, Role
from medservice.domain.errors import DomainError
from medservice.service import idempotency
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger("medservice.api")

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "principal", default=None)

PUBLIC_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def principal_from_interceptor(context: Any) -> Principal:
    """How servicers learn the caller in production: the interceptor authenticated it."""
    return current_principal()


Authenticate = Callable[[Any], Principal]


def current_principal() -> Principal:
    principal = _principal.get()
    if principal is None:  # the interceptor always sets it; this is a wiring error
        raise RuntimeError("no authenticated principal for this call")
    return principal


def abort(context: Any, status: grpc.Status) -> NoReturn:
    """End the call with a rich status: what abort_with_status does, spelled out so that
    grpcio-testing's context (which lacks abort_with_status) behaves like the server's."""
    context.set_trailing_metadata(status.trailing_metadata)
    context.abort(status.code, status.details)
    raise AssertionError("context.abort raises")


def _bearer(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class CallInterceptor(grpc.ServerInterceptor):
    def __init__(self, verifier: TokenVerifier, uow_factory: UnitOfWorkFactory,
                 clock: Clock) -> None:
        self._verifier = verifier
        self._audit = AuditRecorder(uow_factory, clock)  # one event per call (issue 5)

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        method: str = details.method
        if handler is None or method.startswith(PUBLIC_PREFIXES):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler  # the API has no client- or bidi-streaming methods

    def _enter(self, method: str, request: Any, context: grpc.ServicerContext
               ) -> contextvars.Token[Principal | None]:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            method=method, request_id=getattr(request, "request_id", "") or None)
        token = _bearer(context.invocation_metadata())
        if token is None:
            log.info("call refused", code="UNAUTHENTICATED")
            abort(context, simple_status(
                code_pb2.UNAUTHENTICATED, "MISSING_TOKEN", "a bearer token is required"))
        try:
            principal = self._verifier.verify(token)
        except DomainError as e:
            log.info("call refused", code="UNAUTHENTICATED", reason=e.reason)
            abort(context, status_for(e))
        structlog.contextvars.bind_contextvars(subject=principal.subject,
                                               role=principal.role.value)
        return _principal.set(principal)

    def _wrap_unary(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            token = self._enter(method, request, context)
            audit = self._audit.begin(method, request, current_principal())
            try:
                try:
                    response = behavior(request, context)
                except BaseException:
                    self._audit.end(audit, _code_name(context, raised=True))
                    raise
                address_created(response)  # a retried create answered from the request log
                if not self._audit.end(audit, _code_name(context)):
                    abort(context, internal_status())  # no data out that the trail lacks
                return response
            finally:
                _principal.reset(token)
                _log_done(context, started)

        return call

    def _wrap_stream(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            started = time.perf_counter()
            token = self._enter(method, request, context)
            audit = self._audit.begin(method, request, current_principal(), stream=True)
            responses: Any = ()
            try:
                try:
                    responses = behavior(request, context)
                    for response in responses:
                        if not self._audit.first_message(audit):
                            abort(context, internal_status())
                        yield response
                except GeneratorExit:  # the client went away
                    self._audit.end(audit, "CANCELLED")
                    raise
                except BaseException:
                    self._audit.end(audit, _code_name(context, raised=True))
                    raise
                self._audit.end(audit, _code_name(context))
            finally:
                getattr(responses, "close", lambda: None)()
                _principal.reset(token)
                _log_done(context, started)

        return call


def _code_name(context: grpc.ServicerContext, *, raised: bool = False) -> str:
    """The call's final status: what it aborted with; UNKNOWN when an exception escaped
    without one (gRPC answers so)."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    return "UNKNOWN" if raised else "OK"


def _log_done(context: grpc.ServicerContext, started: float) -> None:
    code = context.code()
    name = code.name if isinstance(code, grpc.StatusCode) else "OK"
    log.info("call", code=name, ms=round((time.perf_counter() - started) * 1000, 2))
    structlog.contextvars.clear_contextvars()


S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


def rpc(*roles: Role) -> Callable[[Callable[[S, Req, Any, Principal], Resp]],
                                  Callable[[S, Req, Any], Resp]]:
    """Servicer method decorator: the caller must have one of `roles`; domain errors become
    rich statuses; anything else becomes INTERNAL without a trace. The method receives the
    principal as its third argument. A servicer may carry an `authenticate(context)`
    attribute (servicer-level tests give one); by default the interceptor's principal."""

    def decorate(fn: Callable[[S, Req, Any, Principal], Resp]) -> Callable[[S, Req, Any], Resp]:
        @functools.wraps(fn)
        def wrapper(self: S, request: Req, context: Any) -> Resp:
            try:
                return fn(self, request, context, _authorised(self, context, roles))
            except Exception as e:
                abort(context, _failure_status(e))

        return wrapper

    return decorate


def _authorised(servicer: object, context: Any, roles: tuple[Role, ...]) -> Principal:
    """The caller, who must have one of `roles`. A servicer may carry an
    `authenticate(context)` attribute (servicer-level tests give one)."""
    authenticate: Authenticate = getattr(servicer, "authenticate", principal_from_interceptor)
    principal = authenticate(context)
    principal.require_role(*roles)
    return principal


def _failure_status(error: Exception) -> grpc.Status:
    """A domain error's rich status; anything else INTERNAL, logged with its trace (call
    it from the except block) and never sent."""
    if isinstance(error, DomainError):
        log.info("call failed", reason=error.reason)
        return status_for(error)
    log.exception("unexpected error")
    return internal_status()


M = TypeVar("M", bound=Message)


def run_idempotent(
    uow_factory: UnitOfWorkFactory,
    principal: Principal,
    method: str,
    request: Message,
    request_id: str,
    response_type: type[M],
    work: Callable[[UnitOfWork], M],
    now: datetime,
) -> M:
    """service.idempotency.run_idempotent for a gRPC write: the request's digest names
    it, the response message is what is stored, and a create's audit event names the new
    resource before it commits with it."""
    digest = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
    return idempotency.run_idempotent(
        uow_factory, principal.subject, method, request_id, digest,
        lambda uow: address_created(work(uow)), lambda m: m.SerializeToString(),
        response_type.FromString, now)


def rpc_stream(*roles: Role) -> Callable[[Callable[[S, Req, Any, Principal], Iterator[Resp]]],
                                         Callable[[S, Req, Any], Iterator[Resp]]]:
    """`rpc` for a server-streaming method: the same role check and error mapping, for
    errors raised before the first message and while streaming."""

    def decorate(fn: Callable[[S, Req, Any, Principal], Iterator[Resp]]
                 ) -> Callable[[S, Req, Any], Iterator[Resp]]:
        @functools.wraps(fn)
        def wrapper(self: S, request: Req, context: Any) -> Iterator[Resp]:
            try:
                yield from fn(self, request, context, _authorised(self, context, roles))
            except Exception as e:
                abort(context, _failure_status(e))

        return wrapper

    return decorate

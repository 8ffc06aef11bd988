"""Per-call plumbing: authentication, limits, log context, error mapping and idempotent
writes.

The interceptor authenticates every call (health and reflection excepted) before it decodes
the body, applies the caller's rate and the method's size limit, and binds the log context;
the `rpc` decorator checks the role and maps errors, so servicer methods stay a few lines:
convert the request, call one use case, convert the result.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol, TypeVar

import grpc
import structlog
from google.protobuf.message import Message
from google.rpc import code_pb2

from medservice import i18n
from medservice.api.audit_capture import (
    AppendAudit,
    AuditRecorder,
    address_created,
    pending_audit,
)
from medservice.api.auth import TokenVerifier
from medservice.api.convert import check_request
from medservice.api.errors import internal_status, retry_status, simple_status, status_for
from medservice.api.limits import CallRates, QuietLog, RequestSizes
from medservice.domain.access import Principal, Role
from medservice.domain.errors import DomainError
from medservice.service import idempotency
from medservice.service.idempotency import is_request_id
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


def _value(metadata: Any, name: str) -> str | None:
    for key, value in metadata or ():
        if key == name and isinstance(value, str):
            return value
    return None


def _ended_by_transport(context: grpc.ServicerContext) -> bool:
    """Whether a call whose body never arrived was ended by gRPC itself (a body over the
    server's maximum): the end can reach us just after the missing body does, so wait
    for it briefly. A client that sent no message keeps its call open."""
    ended = threading.Event()
    return not context.add_callback(ended.set) or ended.wait(_TRANSPORT_END_GRACE_S)


def _bearer(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


# The commonest refusal in a flood, made once.
_MISSING_TOKEN = simple_status(code_pb2.UNAUTHENTICATED, "MISSING_TOKEN",
                               "a bearer token is required")
# gRPC has already answered such a call; this status only ends the handler.
_MISSING_BODY = simple_status(code_pb2.RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE",
                              "the request is larger than the server accepts")
_TRANSPORT_END_GRACE_S = 0.2


class CallObserver(Protocol):
    """Told of every finished call and every audit event not written (metrics)."""

    def observe_call(self, method: str, code: str, seconds: float) -> None: ...

    def audit_write_failed(self) -> None: ...


class _Unobserved:
    def observe_call(self, method: str, code: str, seconds: float) -> None:
        pass

    def audit_write_failed(self) -> None:
        pass


class CallInterceptor(grpc.ServerInterceptor):
    """Authenticates each call from its metadata before its body is read: the handler
    receives the raw bytes (its deserializer is replaced by none) only when it asks, and
    the interceptor decodes them itself once the caller is known, within its rate and the
    method's size.
    A caller without a valid token, or over its rate, costs no decode and no database;
    those refusals are logged at most once per kind every few seconds (QuietLog)."""

    def __init__(self, verifier: TokenVerifier, uow_factory: UnitOfWorkFactory,
                 clock: Clock, observer: CallObserver | None = None, *,
                 rates: CallRates | None = None, sizes: RequestSizes | None = None,
                 append_audit: AppendAudit | None = None) -> None:
        self._verifier = verifier
        # One event per call (issue 5); `append_audit`: how events that commit on their own
        # are written (store.audit.AuditAppender), else through units of work.
        self._audit = AuditRecorder(uow_factory, clock, append_audit)
        self._observer = observer or _Unobserved()
        self._rates = rates or CallRates(0, 1)
        self._sizes = sizes or RequestSizes(default=2**31 - 1, documents=2**31 - 1)
        self._refusals = QuietLog(log)
        self._handlers: dict[str, Any] = {}  # the wrapped handler per method, made once

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        method: str = details.method
        if method.startswith(PUBLIC_PREFIXES):
            return continuation(details)
        wrapped = self._handlers.get(method)
        if wrapped is None:
            wrapped = self._wrap(continuation(details), method)
            if wrapped is not None:
                self._handlers[method] = wrapped
        return wrapped

    def _wrap(self, handler: Any, method: str) -> Any:
        """Each unary-request method is served as client-streaming (the same on the wire):
        gRPC then reads no message before the wrapper asks for it, so the body of a call
        that is refused is never received, let alone decoded."""
        if handler is None:
            return None
        decode: Callable[[bytes], Any] = handler.request_deserializer or (lambda raw: raw)
        if handler.unary_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method, decode),
                request_deserializer=None,  # raw bytes: decoded after authentication
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method, decode),
                request_deserializer=None,
                response_serializer=handler.response_serializer)
        return handler  # the API has no client- or bidi-streaming methods

    def _refuse(self, context: grpc.ServicerContext, status: grpc.Status, reason: str,
                **fields: Any) -> NoReturn:
        self._refusals.warning("call refused", code=status.code.name, reason=reason, **fields)
        method = str(structlog.contextvars.get_contextvars().get("method", ""))
        self._observer.observe_call(method, status.code.name, 0.0)  # metrics count it too
        abort(context, status)

    def _enter(self, method: str, messages: Iterator[bytes], decode: Callable[[bytes], Any],
               context: grpc.ServicerContext
               ) -> tuple[Any, contextvars.Token[Principal | None]]:
        """Authenticate, then the caller's rate, then receive the body and check the
        method's size, then decode: the request and the principal's context token.
        Refusals end the call (abort)."""
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(method=method)
        metadata = context.invocation_metadata()
        # The texts of the answer in the language asked for, else the facility's (issue 15).
        i18n.request_language(_value(metadata, "accept-language"))
        token = _bearer(metadata)
        if token is None:
            self._refuse(context, _MISSING_TOKEN, "MISSING_TOKEN")
        try:
            principal = self._verifier.verify(token)
        except DomainError as e:
            self._refuse(context, status_for(e), e.reason)
        structlog.contextvars.bind_contextvars(subject=principal.subject,
                                               role=principal.role.value)
        wait = self._rates.take(principal.subject)
        if wait > 0:  # not audited: refusing a flood must not write per call
            self._refuse(context, retry_status(
                code_pb2.RESOURCE_EXHAUSTED, "RATE_LIMITED",
                "too many calls from this caller; retry after the delay given", wait),
                "RATE_LIMITED")
        raw = next(messages, None)  # a cancelled call raises its own RpcError: quiet
        if not isinstance(raw, bytes) and _ended_by_transport(context):
            # gRPC refused the body (too large) and said so: counted, not logged.
            self._observer.observe_call(method, "RESOURCE_EXHAUSTED", 0.0)
            abort(context, _MISSING_BODY)
        if not isinstance(raw, bytes):  # a client that sent no message at all
            self._refuse_audited(method, principal, context, simple_status(
                code_pb2.INVALID_ARGUMENT, "MALFORMED_REQUEST", "the request has no message"),
                "MALFORMED_REQUEST", size=0)
        limit = self._sizes.limit(method)
        if len(raw) > limit:
            self._refuse_audited(method, principal, context, simple_status(
                code_pb2.RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE",
                f"the request is larger than this method accepts ({limit} bytes)",
                {"limit_bytes": str(limit)}), "REQUEST_TOO_LARGE", size=len(raw))
        try:
            request = decode(raw)
        except Exception:  # DecodeError, or whatever a generic handler's deserializer raises
            self._refuse_audited(method, principal, context, simple_status(
                code_pb2.INVALID_ARGUMENT, "MALFORMED_REQUEST",
                "the request body is not a valid message for this method"),
                "MALFORMED_REQUEST", size=len(raw))
        request_id = getattr(request, "request_id", "")
        if is_request_id(request_id):  # anything else is refused, and never logged
            structlog.contextvars.bind_contextvars(request_id=request_id)
        return request, _principal.set(principal)

    def _refuse_audited(self, method: str, principal: Principal,
                        context: grpc.ServicerContext, status: grpc.Status, reason: str,
                        **fields: Any) -> NoReturn:
        """An authenticated caller's refusal leaves its audit event, as every call does."""
        self._audit.end(self._audit.begin(method, None, principal), status.code.name)
        self._refuse(context, status, reason, **fields)

    def _wrap_unary(self, behavior: Callable[..., Any], method: str,
                    decode: Callable[[bytes], Any]) -> Callable[..., Any]:
        def call(messages: Iterator[bytes], context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            request, token = self._enter(method, messages, decode, context)
            audit = self._audit.begin(method, request, current_principal())
            try:
                try:
                    response = behavior(request, context)
                except BaseException:
                    self._audit.end(audit, _code_name(context, raised=True))
                    raise
                address_created(response)  # a retried create answered from the request log
                if not self._audit.end(audit, _code_name(context)):
                    self._observer.audit_write_failed()
                    abort(context, internal_status())  # no data out that the trail lacks
                return response
            finally:
                _principal.reset(token)
                self._observer.observe_call(method, *_log_done(context, started))

        return call

    def _wrap_stream(self, behavior: Callable[..., Any], method: str,
                     decode: Callable[[bytes], Any]) -> Callable[..., Any]:
        def call(messages: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[Any]:
            started = time.perf_counter()
            request, token = self._enter(method, messages, decode, context)
            audit = self._audit.begin(method, request, current_principal(), stream=True)
            responses: Any = ()
            try:
                try:
                    responses = behavior(request, context)
                    for response in responses:
                        if not self._audit.first_message(audit):
                            self._observer.audit_write_failed()
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
                self._observer.observe_call(method, *_log_done(context, started))

        return call


def _code_name(context: grpc.ServicerContext, *, raised: bool = False) -> str:
    """The call's final status: what it aborted with; UNKNOWN when an exception escaped
    without one (gRPC answers so)."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    return "UNKNOWN" if raised else "OK"


def _log_done(context: grpc.ServicerContext, started: float) -> tuple[str, float]:
    """Log the finished call; its code's name and its duration in seconds."""
    seconds = time.perf_counter() - started
    code = context.code()
    name = code.name if isinstance(code, grpc.StatusCode) else "OK"
    log.info("call", code=name, ms=round(seconds * 1000, 2))
    structlog.contextvars.clear_contextvars()
    return name, seconds


S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


def rpc(*roles: Role) -> Callable[[Callable[[S, Req, Any, Principal], Resp]],
                                  Callable[[S, Req, Any], Resp]]:
    """Servicer method decorator: the caller must have one of `roles`; the request must pass
    `check_request` (no out-of-range instant, no unknown enum number); domain errors become
    rich statuses; anything else becomes INTERNAL without a trace. The method receives the
    principal as its third argument. A servicer may carry an `authenticate(context)`
    attribute (servicer-level tests give one); by default the interceptor's principal."""

    def decorate(fn: Callable[[S, Req, Any, Principal], Resp]) -> Callable[[S, Req, Any], Resp]:
        @functools.wraps(fn)
        def wrapper(self: S, request: Req, context: Any) -> Resp:
            try:
                principal = _authorised(self, context, roles)
                check_request(request)  # type: ignore[arg-type]
                return fn(self, request, context, principal)
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
    draft = pending_audit.get()
    addressed = draft.event if draft is not None else None

    def stored(data: bytes) -> M:
        # Answered from the request log: a retry's work ran again and rolled back, and
        # may have named a resource it chose then (a new id) that was never created. The
        # event goes back to what the request addressed; the interceptor then takes the
        # stored response's name into it.
        if draft is not None and addressed is not None and not draft.written:
            draft.event = addressed
        return response_type.FromString(data)

    return idempotency.run_idempotent(
        uow_factory, principal.subject, method, request_id, digest,
        lambda uow: address_created(work(uow)), lambda m: m.SerializeToString(),
        stored, now)


def rpc_stream(*roles: Role) -> Callable[[Callable[[S, Req, Any, Principal], Iterator[Resp]]],
                                         Callable[[S, Req, Any], Iterator[Resp]]]:
    """`rpc` for a server-streaming method: the same role check and error mapping, for
    errors raised before the first message and while streaming."""

    def decorate(fn: Callable[[S, Req, Any, Principal], Iterator[Resp]]
                 ) -> Callable[[S, Req, Any], Iterator[Resp]]:
        @functools.wraps(fn)
        def wrapper(self: S, request: Req, context: Any) -> Iterator[Resp]:
            try:
                principal = _authorised(self, context, roles)
                check_request(request)  # type: ignore[arg-type]
                yield from fn(self, request, context, principal)
            except Exception as e:
                abort(context, _failure_status(e))

        return wrapper

    return decorate

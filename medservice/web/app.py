"""The HTTP/JSON face of the API: a small ASGI application that transcodes each request
into its RPC and makes that call on this process's own gRPC server over a local channel.

Going through the gRPC server (not calling servicers directly) is what keeps one code path:
the same interceptor authenticates the bearer token and writes the audit event, the same
servicer checks role, facility scope and input and runs the idempotent write, and the same
google.rpc.Status comes back, here as JSON with the usual HTTP code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from medservice.api.auth import TokenVerifier
from medservice.api.errors import status_for
from medservice.domain.errors import DomainError, FieldViolation, InvalidArgument
from medservice.v1 import reports_pb2, rounds_pb2
from medservice.web import fhir
from medservice.web import status as st
from medservice.web.board import HEADERS as BOARD_HEADERS
from medservice.web.board import board_file
from medservice.web.routes import Route, build_request, to_json

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
M = TypeVar("M", bound=Message)

MAX_BODY_BYTES = 4 * 1024 * 1024  # gRPC's own default limit for a request message
CALL_TIMEOUT_SECONDS = 60.0
SSE_RETRY_MILLISECONDS = 2000


def _bearer(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for key, value in headers:
        if key.lower() == b"authorization":
            return value.decode("latin-1")
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class HttpApi:
    """The ASGI application. `channels` are set once the event loop runs (server.py):
    unary calls share the first; event streams are spread over all of them, as one HTTP/2
    connection carrying hundreds of streams became the fan-out's bottleneck."""

    def __init__(self, routes: list[Route], verifier: TokenVerifier,
                 openapi: Callable[[], dict[str, Any]],
                 metrics: Callable[[], tuple[bytes, str]] | None = None,
                 delivered: Callable[[float], None] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._routes = routes
        self._verifier = verifier
        self._openapi = openapi
        self._openapi_body: bytes | None = None
        self._metrics = metrics
        self._delivered = delivered
        self._clock = clock or (lambda: datetime.now(UTC))
        self.channels: list[grpc.aio.Channel] = []
        self._callables: dict[str, Any] = {}
        self._streams: dict[str, list[Any]] = {}
        self._opened = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no websockets; lifespan is off
        path: str = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
        path = path.split("?", 1)[0]
        verb: str = scope["method"]
        if path == "/openapi.json" and verb == "GET":
            if self._openapi_body is None:
                self._openapi_body = json.dumps(self._openapi(), indent=1).encode()
            await _answer(send, 200, self._openapi_body)
            return
        if path == "/metrics" and verb == "GET" and self._metrics is not None:
            body, content_type = self._metrics()
            await _answer(send, 200, body, content_type)
            return
        if path == "/healthz" and verb == "GET":
            await _answer(send, 200, b'{"status":"SERVING"}')
            return
        if verb == "GET" and (page := board_file(path)) is not None:
            await _answer(send, 200, page[0], page[1], extra=BOARD_HEADERS)
            return
        kind = fhir.search_type(path)
        if kind is not None and verb == "GET":
            await self._fhir_search(kind, scope, send)
            return
        if path == fhir.RECORD_PATH and verb == "POST":
            await self._fhir_record(scope, receive, send)
            return
        route, values, verbs = self._find(verb, path)
        if route is None or values is None:
            if verbs:
                await _answer_status(send, st.simple(code_pb2.UNIMPLEMENTED, (
                    f"{verb} is not allowed on {path}; use {', '.join(sorted(verbs))}")),
                    http=405, extra=[(b"allow", ", ".join(sorted(verbs)).encode())])
            else:
                await _answer_status(send, st.simple(code_pb2.NOT_FOUND,
                                                     f"no API method at {path}"))
            return
        await self._call(route, values, scope, receive, send)

    def _find(self, verb: str, path: str
              ) -> tuple[Route | None, dict[str, str] | None, set[str]]:
        verbs: set[str] = set()
        for route in self._routes:
            values = route.match(path)
            if values is None:
                continue
            if route.verb == verb:
                return route, values, verbs
            verbs.add(route.verb)
        return None, None, verbs

    async def _call(self, route: Route, values: dict[str, str], scope: Scope,
                    receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if body is None:
            await _answer_status(send, st.simple(code_pb2.INVALID_ARGUMENT,
                                                 "the body is larger than 4 MiB"), http=413)
            return
        authorization = _bearer(scope.get("headers", ()))
        query = _query(scope.get("query_string", b""))
        try:
            request = build_request(route, values, query, body)
        except DomainError as e:
            # Who is asking is said before what is wrong with the asking, as over gRPC.
            refusal = self._refusal(authorization)
            await _answer_status(send, refusal or st.from_grpc_status(status_for(e)))
            return
        metadata: tuple[tuple[str, str], ...] = (
            (("authorization", authorization),) if authorization else ())
        accept_language = _header(scope, b"accept-language")
        if accept_language:  # the texts in the browser's language (issue 15)
            metadata += (("accept-language", accept_language),)
        if route.streaming:
            last_event_id = _header(scope, b"last-event-id")
            if last_event_id and hasattr(request, "resume_token"):
                request.resume_token = last_event_id  # an EventSource reconnecting
            await self._stream(route, request, metadata, receive, send)
            return
        try:
            response = await self._unary(route)(request, metadata=metadata,
                                                timeout=CALL_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as e:
            await _answer_status(send, st.from_rpc_error(e))
            return
        await _answer(send, 200, _dumps(to_json(response)))

    async def _fhir_search(self, kind: str, scope: Scope, send: Send) -> None:
        """A FHIR search (medservice.web.fhir): the ExportFhir call, answered as FHIR."""
        authorization = _bearer(scope.get("headers", ()))
        try:
            request = fhir.search_request(kind, _query(scope.get("query_string", b"")))
        except DomainError as e:
            status = self._refusal(authorization) or st.from_grpc_status(status_for(e))
            await _answer_fhir_status(send, status)
            return
        document = await self._fhir_call(fhir.EXPORT_METHOD, request,
                                         reports_pb2.Document.FromString, authorization, send)
        if document is not None:
            await _answer(send, 200, fhir.bundle_of(document), fhir.CONTENT_TYPE)

    async def _fhir_call(self, method: str, request: Message,
                         deserialize: Callable[[bytes], M], authorization: str | None,
                         send: Send) -> M | None:
        """The gRPC call behind a FHIR route, with the caller's token; None when it was
        refused (answered already, as an OperationOutcome)."""
        metadata = (("authorization", authorization),) if authorization else ()
        call = self._callables.get(method)
        if call is None:
            call = self.channels[0].unary_unary(method, request_serializer=_serialize,
                                                response_deserializer=deserialize)
            self._callables[method] = call
        try:
            response: M = await call(request, metadata=metadata, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as e:
            await _answer_fhir_status(send, st.from_rpc_error(e))
            return None
        return response

    async def _fhir_record(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A POSTed MedicationAdministration: the RecordDose call (medservice.web.fhir)."""
        body = await _read_body(receive)
        authorization = _bearer(scope.get("headers", ()))
        try:
            if body is None:
                raise InvalidArgument([FieldViolation("body", "is larger than 4 MiB")])
            request = fhir.record_request(body)
        except DomainError as e:
            status = self._refusal(authorization) or st.from_grpc_status(status_for(e))
            await _answer_fhir_status(send, status)
            return
        response = await self._fhir_call(fhir.RECORD_METHOD, request,
                                         rounds_pb2.RecordDoseResponse.FromString,
                                         authorization, send)
        if response is None:
            return
        record_id = response.record.name.rsplit("/", 1)[-1]
        answer = {**json.loads(body or b"{}"), "id": record_id}
        await _answer(send, 201, _dumps(answer), fhir.CONTENT_TYPE,
                      extra=[(b"location", f"{fhir.RECORD_PATH}/{record_id}".encode())])

    def _refusal(self, authorization: str | None) -> status_pb2.Status | None:
        """The 401 the call would have had, if any (the interceptor's own verifier)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return st.simple(code_pb2.UNAUTHENTICATED, "a bearer token is required")
        try:
            self._verifier.verify(token.strip())
        except DomainError as e:
            return st.from_grpc_status(status_for(e))
        return None

    def _unary(self, route: Route) -> Any:
        made = self._callables.get(route.grpc_path)
        if made is None:
            assert self.channels, "the HTTP server starts its channels first"
            made = self.channels[0].unary_unary(
                route.grpc_path, request_serializer=_serialize,
                response_deserializer=route.output_class().FromString)
            self._callables[route.grpc_path] = made
        return made

    async def _stream(self, route: Route, request: Message, metadata: Any,
                      receive: Receive, send: Send) -> None:
        """A server-streaming RPC as Server-Sent Events: each message is one event whose id
        is its resume_token (what EventSource sends back as Last-Event-ID)."""
        callables = self._streams.get(route.grpc_path)
        if callables is None:
            # The event is made from the message's bytes once for every stream it goes to
            # (an alert reaches each watcher as the same bytes).
            encode = _event_encoder(route.output_class())
            callables = [channel.unary_stream(route.grpc_path, request_serializer=_serialize,
                                              response_deserializer=encode)
                         for channel in self.channels]
            self._streams[route.grpc_path] = callables
        self._opened += 1
        call = callables[self._opened % len(callables)](request, metadata=metadata)
        # The watch sends its headers once it has accepted the caller: a refusal before that
        # keeps its HTTP code instead of becoming an event in a 200 stream.
        await call.initial_metadata()
        if call.done():
            code = await call.code()
            if code != grpc.StatusCode.OK:
                await _answer_status(send, st.from_metadata(
                    code.value[0], await call.details() or "", await call.trailing_metadata()))
                return
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]})
        await send({"type": "http.response.body",
                    "body": f"retry: {SSE_RETRY_MILLISECONDS}\n\n".encode(),
                    "more_body": True})
        watcher = asyncio.ensure_future(_until_disconnect(receive))
        watcher.add_done_callback(lambda _: call.cancel())
        try:
            async for event, created in call:
                await send({"type": "http.response.body", "body": event, "more_body": True})
                if created is not None and self._delivered is not None:
                    self._delivered(self._clock().timestamp() - created)
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                data = _dumps(st.to_json(st.from_rpc_error(e))).decode()
                await _send_quietly(send, f"event: error\ndata: {data}\n\n".encode(), True)
        except asyncio.CancelledError:
            call.cancel()
            if not watcher.done():
                raise  # this task is being cancelled (the server is stopping)
            return  # the client went away: nothing left to say
        finally:
            watcher.cancel()
        await _send_quietly(send, b"", False)


def _event_encoder(message_class: type[Message]
                   ) -> Callable[[bytes], tuple[bytes, float | None]]:
    """Message bytes → the event's bytes, and an alert's creation (epoch seconds)."""

    @functools.lru_cache(maxsize=4096)
    def encode(data: bytes) -> tuple[bytes, float | None]:
        message = message_class.FromString(data)
        alert = getattr(message, "alert", None)
        created = None
        if alert is not None and message.HasField("alert"):
            created = alert.create_time.ToDatetime(UTC).timestamp()
        return _event(message), created

    return encode


def _event(message: Message) -> bytes:
    kind = message.WhichOneof("event") if "event" in message.DESCRIPTOR.oneofs_by_name \
        else None
    token = getattr(message, "resume_token", "")
    lines = [f"id: {token}"] if token else []
    if kind:
        lines.append(f"event: {kind}")
    lines.append(f"data: {_dumps(to_json(message)).decode()}")
    return ("\n".join(lines) + "\n\n").encode()


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_quietly(send: Send, body: bytes, more: bool) -> None:
    with contextlib.suppress(OSError):  # the client is gone
        await send({"type": "http.response.body", "body": body, "more_body": more})


def _query(raw: bytes) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True)


async def _read_body(receive: Receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _dumps(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


async def _answer(send: Send, code: int, body: bytes,
                  content_type: str = "application/json",
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": code, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
        *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


async def _answer_status(send: Send, status: status_pb2.Status, *, http: int | None = None,
                         extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await _answer(send, http or st.http_code(status), _dumps(st.to_json(status)),
                  extra=extra)


async def _answer_fhir_status(send: Send, status: status_pb2.Status) -> None:
    await _answer(send, st.http_code(status), _dumps(fhir.operation_outcome(status)),
                  fhir.CONTENT_TYPE)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()

"""The HTTP routes of the API, read from the `google.api.http` annotations on the protos,
and the transcoding of an HTTP request into the RPC's request message (the usual rules:
path variables, then the body as `body` says, then query parameters for the rest).

Nothing here is written per RPC: a new RPC with an annotation is served over HTTP as is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from google.api import annotations_pb2, http_pb2
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.v1 import (
    alerts_pb2,
    audit_pb2,
    discrepancies_pb2,
    facilities_pb2,
    medicine_cards_pb2,
    reports_pb2,
    rounds_pb2,
)

API_FILES = (facilities_pb2, medicine_cards_pb2, rounds_pb2, discrepancies_pb2, alerts_pb2,
             audit_pb2, reports_pb2)

# Message types whose proto3 JSON form is a string (or number): they may come as one query
# parameter, as a scalar does.
_JSON_SCALAR_MESSAGES = frozenset({
    "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask",
    "google.protobuf.StringValue", "google.protobuf.Int32Value", "google.protobuf.Int64Value",
    "google.protobuf.BoolValue", "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
    "google.protobuf.UInt32Value", "google.protobuf.UInt64Value",
    "google.protobuf.BytesValue"})

_VARIABLE = re.compile(r"\{([a-zA-Z0-9_.]+)(?:=([^}]*))?\}")


@dataclass(frozen=True)
class Route:
    verb: str  # "GET", "POST", ...
    template: str  # "/v1/{name=facilities/*}"
    pattern: re.Pattern[str]
    variables: tuple[str, ...]  # field paths, in the order of the pattern's groups
    body: str  # "", "*" or a top-level field name
    method: MethodDescriptor

    @property
    def grpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def streaming(self) -> bool:
        return bool(self.method.server_streaming)

    def input_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.input_type)

    def output_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.output_type)

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {field: unquote(value) for field, value in zip(self.variables, found.groups(),
                                                               strict=True)}


def _segment_pattern(segments: str) -> str:
    """A variable's segments ("facilities/*/residents/*") as a regular expression."""
    parts = []
    for segment in segments.split("/"):
        if segment == "**":
            parts.append(".+")
        elif segment == "*":
            parts.append("[^/]+")
        else:
            parts.append(re.escape(segment))
    return "/".join(parts)


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """`/v1/{name=facilities/*}/alerts:watch` → a pattern over the URL path (still
    percent-encoded) and the field paths its groups fill."""
    regex, variables, at = [], [], 0
    for found in _VARIABLE.finditer(template):
        regex.append(re.escape(template[at:found.start()]))
        regex.append(f"({_segment_pattern(found.group(2) or '*')})")
        variables.append(found.group(1))
        at = found.end()
    regex.append(re.escape(template[at:]))
    return re.compile("".join(regex)), tuple(variables)


def _rule_routes(rule: http_pb2.HttpRule, method: MethodDescriptor) -> Iterable[Route]:
    kind = rule.WhichOneof("pattern")
    if kind is not None and kind != "custom":
        template = getattr(rule, kind)
        pattern, variables = compile_template(template)
        yield Route(kind.upper(), template, pattern, variables, rule.body, method)
    for extra in rule.additional_bindings:
        yield from _rule_routes(extra, method)


def api_routes(files: Iterable[Any] = API_FILES) -> list[Route]:
    """Every annotated RPC of the API. Templates with a custom verb (":watch") come before
    those without, so that a plain variable never swallows one."""
    routes: list[Route] = []
    for module in files:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if options.HasExtension(annotations_pb2.http):
                    routes.extend(_rule_routes(options.Extensions[annotations_pb2.http], method))
    return sorted(routes, key=lambda r: ":" not in r.template.rsplit("/", 1)[-1])


def _field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    field = descriptor.fields_by_name.get(name)
    if field is None:  # the JSON name is accepted too, as in a body
        field = next((f for f in descriptor.fields if f.json_name == name), None)
    return field


def _put(target: dict[str, Any], descriptor: Descriptor, path: str, value: str,
         *, from_query: bool) -> None:
    """Set `path` ("facility.name") to `value` in the JSON form of a message. A path
    variable replaces what the body said; a repeated query parameter adds to a list."""
    *parents, leaf = path.split(".")
    for name in parents:
        field = _field(descriptor, name)
        if field is None or field.message_type is None or is_list(field):
            raise _bad(path, "is not a field of the request")
        if field.json_name != field.name and field.json_name in target:
            target[field.name] = target.pop(field.json_name)  # one key per field
        nested = target.setdefault(field.name, {})
        if not isinstance(nested, dict):
            raise _bad(path, "is not an object")
        target, descriptor = nested, field.message_type
    field = _field(descriptor, leaf)
    if field is None or (field.message_type is not None
                         and field.message_type.full_name not in _JSON_SCALAR_MESSAGES):
        raise _bad(path, "is not a field of the request that a path or query may set")
    converted: Any = value
    if field.type == FieldDescriptor.TYPE_BOOL:
        if value.lower() not in ("true", "false", "1", "0"):
            raise _bad(path, "must be true or false")
        converted = value.lower() in ("true", "1")
    if field.json_name != field.name:
        target.pop(field.json_name, None)
    if is_list(field) and from_query:
        target.setdefault(field.name, []).append(converted)
    else:
        target[field.name] = [converted] if is_list(field) else converted


def is_list(field: FieldDescriptor) -> bool:
    repeated = getattr(field, "is_repeated", None)  # protobuf 6; `label` before
    if repeated is None:
        return bool(getattr(field, "label", 0) == FieldDescriptor.LABEL_REPEATED)
    return bool(repeated)


def _bad(field: str, description: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation(field, description)])


_PARSE_FIELD = re.compile(r'Failed to parse (\w+) field|has no field named "(\w+)"')


def build_request(route: Route, path_values: dict[str, str],
                  query: Iterable[tuple[str, str]], body: bytes) -> Message:
    """The RPC's request from an HTTP request; InvalidArgument naming the field when the
    JSON or a parameter does not fit the message."""
    descriptor = route.method.input_type
    document: dict[str, Any] = {}
    if route.body:
        try:
            given = json.loads(body) if body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            raise _bad("body", "is not JSON") from None
        if route.body == "*":
            if not isinstance(given, dict):
                raise _bad("body", "must be a JSON object")
            document = given
        else:
            document[route.body] = given
    elif body.strip():
        raise _bad("body", f"{route.verb} {route.template} takes no body")
    if route.body != "*":
        for key, value in query:
            if key == "access_token":  # never a place for a token: refused, not ignored
                raise _bad(key, "send the token in the Authorization header")
            _put(document, descriptor, key, value, from_query=True)
    for path, value in path_values.items():
        _put(document, descriptor, path, value, from_query=False)
    message = route.input_class()()
    try:
        json_format.ParseDict(document, message)
    except json_format.ParseError as e:
        found = _PARSE_FIELD.search(str(e))
        field = next((g for g in found.groups() if g), "body") if found else "body"
        raise _bad(field, str(e).split("\n")[0][:300]) from None
    return message


def to_json(message: Message) -> dict[str, Any]:
    """The proto3 JSON form (lowerCamelCase names; fields at their default left out)."""
    result: dict[str, Any] = json_format.MessageToDict(message)
    return result

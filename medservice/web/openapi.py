"""An OpenAPI 3.1 document for the HTTP face, made from the same descriptors and
annotations as the routes (nothing written by hand, so it cannot drift from the protos)."""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from medservice.web.routes import Route, api_routes, is_list

_WKT: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.FieldMask": {"type": "string",
                                  "description": "comma-separated field paths"},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}},
                            "additionalProperties": True},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.Empty": {"type": "object"},
}

_T = FieldDescriptor
_SCALARS: dict[int, dict[str, Any]] = {
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BYTES: {"type": "string", "format": "byte"},
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _T.TYPE_FLOAT: {"type": "number", "format": "float"},
    _T.TYPE_INT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _T.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    _T.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    # proto3 JSON writes 64-bit integers as strings
    _T.TYPE_INT64: {"type": "string", "format": "int64"},
    _T.TYPE_SINT64: {"type": "string", "format": "int64"},
    _T.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    _T.TYPE_UINT64: {"type": "string", "format": "uint64"},
    _T.TYPE_FIXED64: {"type": "string", "format": "uint64"},
}

_STATUS_REF = {"$ref": "#/components/schemas/google.rpc.Status"}


class _Schemas:
    def __init__(self) -> None:
        self.defined: dict[str, Any] = {}

    def message(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name in _WKT:
            return dict(_WKT[descriptor.full_name])
        if descriptor.full_name not in self.defined:
            self.defined[descriptor.full_name] = {}  # placeholder: recursion stops here
            self.defined[descriptor.full_name] = {
                "type": "object",
                "properties": {f.json_name: self.field(f) for f in descriptor.fields}}
        return {"$ref": f"#/components/schemas/{descriptor.full_name}"}

    def enum(self, descriptor: EnumDescriptor) -> dict[str, Any]:
        if descriptor.full_name not in self.defined:
            self.defined[descriptor.full_name] = {
                "type": "string", "enum": [v.name for v in descriptor.values]}
        return {"$ref": f"#/components/schemas/{descriptor.full_name}"}

    def single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.message(field.message_type)
        if field.enum_type is not None:
            return self.enum(field.enum_type)
        return dict(_SCALARS[field.type])

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.single(value)}
        if is_list(field):
            return {"type": "array", "items": self.single(field)}
        return self.single(field)


def _singular(collection: str) -> str:
    if collection.endswith("ies"):
        return collection[:-3] + "y"
    return collection[:-1] if collection.endswith("s") else collection


def _path_and_parameters(route: Route) -> tuple[str, list[dict[str, Any]]]:
    """`/v1/{name=facilities/*/residents/*}` → `/v1/facilities/{facility}/residents/
    {resident}`, one parameter per wildcard (OpenAPI parameters hold no slash)."""
    parameters: list[dict[str, Any]] = []

    def expand(found: re.Match[str]) -> str:
        field, segments = found.group(1), (found.group(2) or "*").split("/")
        out = []
        for i, segment in enumerate(segments):
            if segment in ("*", "**"):
                name = _singular(segments[i - 1]) if i > 0 else field
                parameters.append({"name": name, "in": "path", "required": True,
                                   "schema": {"type": "string"},
                                   "description": f"part of the request field `{field}`"})
                out.append("{" + name + "}")
            else:
                out.append(segment)
        return "/".join(out)

    return re.sub(r"\{([a-zA-Z0-9_.]+)(?:=([^}]*))?\}", expand, route.template), parameters


def _query_parameters(route: Route, schemas: _Schemas) -> list[dict[str, Any]]:
    if route.body == "*":
        return []
    bound = {v.split(".")[0] for v in route.variables} | {route.body}
    out = []
    for field in route.method.input_type.fields:
        if field.name in bound:
            continue
        if field.message_type is not None and field.message_type.full_name not in _WKT:
            continue  # only scalars (and what JSON writes as one) travel in a query
        out.append({"name": field.name, "in": "query", "required": False,
                    "schema": schemas.field(field)})
    return out


# Passed to gRPC as accept-language: the staff-facing texts of the answer (docs/i18n.md).
_LANGUAGE: dict[str, Any] = {
    "name": "Accept-Language", "in": "header", "required": False,
    "schema": {"type": "string", "example": "da"},
    "description": "language of the staff-facing texts (da, en); default: the facility's"}


def _operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    path_parameters = _path_and_parameters(route)[1]
    operation: dict[str, Any] = {
        "operationId": f"{route.method.containing_service.name}_{route.method.name}",
        "tags": [route.method.containing_service.name],
        "parameters": path_parameters + _query_parameters(route, schemas) + [_LANGUAGE],
        "responses": {"default": {"description": "an error: google.rpc.Status",
                                  "content": {"application/json": {"schema": _STATUS_REF}}}},
    }
    output = schemas.message(route.method.output_type)
    if route.streaming:
        operation["summary"] = ("Server-Sent Events: one event per message, its id the "
                                "resume_token; reconnect with Last-Event-ID to resume")
        operation["responses"]["200"] = {"description": "a stream of events",
                                         "content": {"text/event-stream": {"schema": output}}}
    else:
        operation["responses"]["200"] = {"description": "OK",
                                         "content": {"application/json": {"schema": output}}}
    if route.body:
        body_schema = (schemas.message(route.method.input_type) if route.body == "*" else
                       schemas.field(route.method.input_type.fields_by_name[route.body]))
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": body_schema}}}
    return operation


def openapi_document(routes: list[Route] | None = None) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes if routes is not None else api_routes():
        path = _path_and_parameters(route)[0]
        paths.setdefault(path, {})[route.verb.lower()] = _operation(route, schemas)
    schemas.defined["google.rpc.Status"] = {"type": "object", "properties": {
        "code": {"type": "integer", "format": "int32"}, "message": {"type": "string"},
        "details": {"type": "array", "items": _WKT["google.protobuf.Any"]}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "medservice", "version": "v1",
                 "description": "HTTP/JSON mapping of the medservice gRPC API "
                                "(google.api.http annotations; proto3 JSON)."},
        "components": {
            "schemas": dict(sorted(schemas.defined.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT"}}},
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }

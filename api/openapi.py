"""The OpenAPI 3.1 document, generated from the operations and their pydantic models, and a
self-contained HTML page listing it (no CDN: it works offline)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, JsonSchemaValue, models_json_schema
from starlette.responses import HTMLResponse, JSONResponse, Response

from api.idempotency import HEADER, KEY_PATTERN, MAX_LENGTH, TTL
from api.operations import Access, Call, Operation
from api.schemas import Empty, ErrorReply, NoQuery
from domain.formats import JSON, Document

TITLE = "Robson API"
VERSION = "0.1.0"
REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")
ERROR_TEXT = {
    400: "Bad request (malformed body, or a refusal such as missing credentials)",
    401: "Missing, invalid or revoked token",
    403: "Forbidden (operator only, or trading disabled)",
    404: "Not found (or another tenant's)",
    409: "Conflict with the current state",
    413: "Body larger than 64 KiB",
    422: "Invalid field values, or a risk rule violated (every violation listed)",
    429: "Rate limit exceeded (see Retry-After)",
    503: "Exchange or database unavailable",
}


def openapi_path(path: str) -> str:
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def _path_parameters(path: str) -> list[Document]:
    parameters: list[Document] = []
    for name, convertor in _PARAM.findall(path):
        schema: Document = {"type": "string"}
        if convertor == "uuid":
            schema["format"] = "uuid"
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def _query_parameters(model: type[BaseModel], defs: dict[str, JsonSchemaValue]) -> list[Document]:
    schema = model.model_json_schema(ref_template=REF)
    defs.update(schema.pop("$defs", {}))
    required = set(schema.get("required", ()))
    parameters: list[Document] = []
    for name, prop in schema.get("properties", {}).items():
        entry: Document = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            entry["description"] = prop["description"]
        entry["schema"] = prop
        parameters.append(entry)
    return parameters


IDEMPOTENCY_KEY: Document = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        f"Makes a retry safe: the same key with the same body and path, within "
        f"{TTL.total_seconds() / 3600:.0f} hours, gets the first reply (with "
        "`Idempotent-Replayed: true`) and places nothing; with another body or path: 422 "
        "`idempotency_key_reused`; while the first is running, or if it ended without a "
        "known outcome: 409. Per tenant."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH, "pattern": KEY_PATTERN},
}


def _content(media_type: str, schema: JSON) -> Document:
    return {media_type: {"schema": schema}}


def openapi_document(operations: Sequence[Operation]) -> Document:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorReply, "serialization")]
    for op in operations:
        if op.body is not Empty:
            models.append((op.body, "validation"))
        if op.response is not None:
            models.append((op.response, "serialization"))
    refs, top = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    schemas: dict[str, JsonSchemaValue] = dict(top.get("$defs", {}))
    error = {"$ref": REF.format(model="ErrorReply")}
    paths: dict[str, Document] = {}
    for op in operations:
        parameters = _path_parameters(op.path)
        if op.query is not NoQuery:
            parameters += _query_parameters(op.query, schemas)
        if op.idempotent:
            parameters.append(IDEMPOTENCY_KEY)
        success: Document = {"type": "object"}
        if op.media_type != "application/json":
            success = {"type": "string"}
        elif op.response is not None:
            success = refs[(op.response, "serialization")]
        responses: Document = {
            str(op.status): {"description": op.summary, "content": _content(op.media_type, success)}
        }
        codes = set(op.errors)
        if op.body is not Empty:
            codes |= {400, 413, 422}
        if op.query is not NoQuery:
            codes.add(422)
        if op.idempotent:
            codes |= {409, 422}
        if op.access is not Access.PUBLIC:
            codes |= {401, 429}
        if op.access is Access.OPERATOR:
            codes.add(403)
        for code in sorted(codes - {op.status}):
            if code < 300:
                responses[str(code)] = {
                    "description": "Also a success (see the summary)",
                    "content": _content("application/json", {"type": "object"}),
                }
            else:
                responses[str(code)] = {
                    "description": ERROR_TEXT.get(code, "Error"),
                    "content": _content("application/json", error),
                }
        operation: Document = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": responses,
        }
        if parameters:
            operation["parameters"] = parameters
        if op.body is not Empty:
            operation["requestBody"] = {
                "required": any(f.is_required() for f in op.body.model_fields.values()),
                "content": _content("application/json", refs[(op.body, "validation")]),
            }
        operation["security"] = [] if op.access is Access.PUBLIC else [{"bearer": []}]
        paths.setdefault(openapi_path(op.path), {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": (
                "Risk-first trading ledger. Every path also answers without its trailing "
                "slash. Money is returned as strings with 8 decimals."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _document(call: Call[Empty, NoQuery]) -> Document:
    document: Document = call.request.app.state.openapi  # built by `create_app`
    return document


def openapi_json(call: Call[Empty, NoQuery]) -> Response:
    return JSONResponse(_document(call))


METHOD_COLOURS: dict[str, str] = {"get": "#2f6f4f", "post": "#1f4f8f"}


def _object(value: JSON) -> Mapping[str, JSON]:
    return value if isinstance(value, Mapping) else {}


def _items(value: JSON) -> Sequence[JSON]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else ()


def docs_page(document: Document) -> str:
    rows: list[str] = []
    schemas = _object(_object(document["components"])["schemas"])
    for path, methods in _object(document["paths"]).items():
        for method, described in _object(methods).items():
            op = _object(described)
            content = _object(_object(op.get("requestBody")).get("content"))
            body = _object(content.get("application/json"))
            ref = str(_object(body.get("schema")).get("$ref", ""))
            model = ref.rsplit("/", 1)[-1]
            schema = schemas.get(model)
            params = ", ".join(str(_object(p)["name"]) for p in _items(op.get("parameters")))
            locked = "token" if op.get("security") else "public"
            detail = ""
            if schema is not None:
                detail = (
                    f"<details><summary>body: {html.escape(model)}</summary><pre>"
                    f"{html.escape(json.dumps(schema, indent=2))}</pre></details>"
                )
            colour = METHOD_COLOURS.get(method, "#555")
            rows.append(
                f'<tr><td><b style="color:{colour}">{method.upper()}</b></td>'
                f"<td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(str(op['summary']))}{detail}</td>"
                f"<td>{html.escape(params)}</td><td>{locked}</td>"
                f"<td>{', '.join(sorted(_object(op['responses'])))}</td></tr>"
            )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{TITLE}</title><style>"
        "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;width:100%}"
        "td,th{border-bottom:1px solid #ddd;padding:6px;text-align:left;vertical-align:top}"
        "code{font-size:13px}pre{background:#f6f6f6;padding:8px;overflow:auto}"
        "</style></head><body>"
        f"<h1>{TITLE} <small>{VERSION}</small></h1>"
        f"<p>{html.escape(str(_object(document['info'])['description']))} "
        'The machine-readable document is <a href="/openapi.json">/openapi.json</a>.</p>'
        "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th>"
        "<th>auth</th><th>statuses</th></tr>" + "".join(rows) + "</table></body></html>"
    )


def docs(call: Call[Empty, NoQuery]) -> Response:
    return HTMLResponse(docs_page(_document(call)))


OPERATIONS = [
    Operation(
        "GET",
        "/openapi.json",
        openapi_json,
        "This API's OpenAPI 3.1 document",
        tag="docs",
        access=Access.PUBLIC,
    ),
    Operation(
        "GET",
        "/docs",
        docs,
        "A readable list of every operation (self-contained HTML)",
        tag="docs",
        access=Access.PUBLIC,
        media_type="text/html",
    ),
]

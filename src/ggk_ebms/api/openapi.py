"""The OpenAPI 3.1 document of /api/v1, generated from the route table and its pydantic models.

pydantic writes JSON Schema 2020-12, which is what OpenAPI 3.1 uses, so the schemas go into
``components/schemas`` unchanged; only the paths are assembled here.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from ggk_ebms import __version__
from ggk_ebms.api.operations import MAX_ID, Operation
from ggk_ebms.api.problem import PROBLEM_TYPE, Problem

_REF = "#/components/schemas/{model}"
_ALWAYS = (400, 401, 403, 429)


def _schema_of(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(tp).json_schema(ref_template=_REF, mode="serialization")
    defs.update(schema.pop("$defs", {}))
    return schema


def _parameters(op: Operation, defs: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in op.path_params:
        kind = op.path_types.get(name, str)
        params.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}
                if kind is int
                else {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
            }
        )
    if op.query is not None:
        schema = op.query.model_json_schema(ref_template=_REF)
        defs.update(schema.pop("$defs", {}))
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": prop,
            }
            if prop.get("type") == "array":
                param["explode"] = True
            params.append(param)
    return params


def _operation(op: Operation, defs: dict[str, Any]) -> dict[str, Any]:
    problem = {"content": {PROBLEM_TYPE: {"schema": {"$ref": _REF.format(model="Problem")}}}}
    responses: dict[str, Any] = {}
    if op.response is None:
        responses[str(op.status if op.status != 200 else 204)] = {"description": "Done"}
    else:
        responses[str(op.status)] = {
            "description": HTTPStatus(op.status).phrase,
            "content": {op.response_media: {"schema": _schema_of(op.response, defs)}},
        }
    for code in (*_ALWAYS, *op.errors, *((413,) if op.body or op.raw_body else ())):
        responses[str(code)] = {"description": HTTPStatus(code).phrase, **problem}
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": _parameters(op, defs),
        "responses": responses,
        "security": [{"bearer": []}],
        "x-scope": op.scope,
    }
    if op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_of(op.body, defs)}},
        }
    elif op.raw_body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {op.raw_body: {"schema": {"type": "string"}}},
        }
    return doc


def openapi_document(operations: list[Operation], *, server_url: str = "/") -> dict[str, Any]:
    _, problem_defs = models_json_schema([(Problem, "serialization")], ref_template=_REF)
    defs: dict[str, Any] = dict(problem_defs.get("$defs", {}))
    paths: dict[str, Any] = {}
    for op in operations:
        paths.setdefault(op.openapi_path, {})[op.method.lower()] = _operation(op, defs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ggk-ebms management API",
            "version": __version__,
            "description": "Our own REST API of the ggk-ebms endpoint (docs/api.md). Every route needs "
            "an API token (`ggk-ebms api-token create`) with the scope in x-scope; admin may do everything.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }

"""The route table of the management API: one ``Operation`` per method and path.

Everything that must hold for every route is derived from this table, so a new route cannot
forget it: authentication and the scope check, the rate limit, request size limits, query and
body validation (pydantic models), the JSON encoding of the answer, the OpenAPI 3.1 document
(``api.openapi``) and the refusal tests (tests/test_api_auth.py).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

if TYPE_CHECKING:
    from ggk_ebms.api.context import ApiContext
    from ggk_ebms.store.api_tokens import ApiToken


@dataclass
class Call:
    """One authenticated request as a handler sees it."""

    request: web.Request
    ctx: ApiContext
    token: ApiToken | None
    query: Any = None
    body: Any = None
    raw: bytes = b""

    @property
    def actor(self) -> str:
        return self.token.name if self.token is not None else "anonymous"

    def path(self, name: str) -> str:
        return self.request.match_info[name]


Handler = Callable[[Call], Awaitable[web.StreamResponse]]

# Integer path parameters are primary keys: a bigint at most.
MAX_ID = 2**63 - 1
_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")


@functools.cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    # Building a TypeAdapter compiles a serializer: once per response type, not per request.
    return TypeAdapter(tp)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # aiohttp pattern: /api/v1/cpas/{cpa_id}
    scope: str | None  # None: no authentication at all (only /health/live)
    handler: Handler
    summary: str
    operation_id: str
    tag: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    raw_body: str | None = None  # media type of a body read as bytes (a CPA: application/xml)
    max_body: int | None = None  # None: the listener's api_max_body_bytes
    response: Any = None  # a type pydantic can describe; None: no content
    response_media: str = "application/json"
    status: int = 200
    errors: tuple[int, ...] = ()
    path_types: dict[str, Any] = field(default_factory=dict)  # {name: int}; str when absent

    @property
    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)

    @property
    def openapi_path(self) -> str:
        return _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", self.path)

    def encode(self, value: Any) -> bytes:
        return _adapter(self.response).dump_json(value, by_alias=True, exclude_none=False)


def json_response(op: Operation, value: Any, status: int | None = None) -> web.Response:
    return web.Response(status=status or op.status, body=op.encode(value), content_type="application/json")


async def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run blocking store or XML work off the event loop (every API layer's handlers use it)."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def delete_cpa(call: Call, cpa_id: str) -> web.Response:
    """Delete a stored CPA for /api/v1 and /service/rest/v19 alike: 404 when unknown, audited."""
    from ggk_ebms.api import actions
    from ggk_ebms.api.audit import record_audit
    from ggk_ebms.api.problem import ProblemError
    from ggk_ebms.errors import CpaError

    try:
        await in_thread(actions.delete_cpa, call.ctx, cpa_id)
    except CpaError as exc:
        raise ProblemError(404, str(exc)) from None
    record_audit(call, "cpa.delete", cpa_id)
    return no_content()


def no_content() -> web.Response:
    return web.Response(status=204)


def text_response(text: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


@dataclass
class RouteTable:
    operations: list[Operation] = field(default_factory=list)

    def add(self, op: Operation) -> Operation:
        self.operations.append(op)
        return op

    def extend(self, ops: Sequence[Operation]) -> None:
        self.operations.extend(ops)

    def under(self, prefix: str) -> list[Operation]:
        return [op for op in self.operations if op.path.startswith(prefix)]

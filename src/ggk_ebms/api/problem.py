"""RFC 9457 problem details: every error of the management API is application/problem+json."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel

PROBLEM_TYPE = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 §3.1 members; ``type`` is about:blank (the status code says it all, §4.2.1)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


def problem(
    status: int,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM_TYPE, headers=headers)


class ProblemError(Exception):
    """Raised by a handler to answer with a problem; the middleware turns it into the response."""

    def __init__(self, status: int, detail: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(detail or HTTPStatus(status).phrase)
        self.status = status
        self.detail = detail
        self.headers = headers

    def response(self, instance: str | None = None) -> web.Response:
        return problem(self.status, self.detail, headers=self.headers, instance=instance)

"""The API's endpoint base class and its OpenAPI description, both from the same declarations.

An :class:`Endpoint` declares its query parameters (:class:`~.params.Param`), its answer serializer and
whether it is paged. :meth:`Endpoint.get` parses the query with exactly those parameters (anything else is
a 400 naming the parameter) and :class:`Schema` writes the same parameters and serializers into the
OpenAPI document served at ``/api/<version>/schema``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import urlencode

from django.conf import settings
from iact_agents.errors import AgentError
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.schemas.openapi import AutoSchema
from rest_framework.views import APIView

from .errors import BadParameter
from .params import Param, int_between, parse_query
from .serializers import page_of


class ServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "a backing service cannot be reached now"
    default_code = "unavailable"


PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"},
        "parameter": {"type": "string", "description": "the query or body parameter at fault (400)"},
    },
    "required": ["type", "title", "status", "detail"],
}
_ERRORS = {
    "400": "Bad parameter (the problem's `parameter` names it)",
    "401": "No or invalid credentials",
    "410": "This API version is sunset",
    "429": "Rate limit reached (Retry-After says when to retry)",
}


class Schema(AutoSchema):
    """OpenAPI of an :class:`Endpoint`, from its declared parameters and serializers."""

    def _endpoint(self) -> Endpoint:
        view = self.view
        assert isinstance(view, Endpoint)
        return view

    def get_operation_id(self, path: str, method: str) -> str:
        version = path.strip("/").split("/")[1] if path.startswith("/api/") else "api"
        return f"{version}_{self._endpoint().operation_ids[method.lower()]}"

    def get_description(self, path: str, method: str) -> str:
        return (type(self._endpoint()).__doc__ or "").strip()

    def get_tags(self, path: str, method: str) -> list[str]:
        return [self._endpoint().tag]

    def get_filter_parameters(self, path: str, method: str) -> list[dict[str, Any]]:
        if method.lower() != "get":
            return []
        return [p.openapi() for p in self._endpoint().all_params()]

    def get_pagination_parameters(self, path: str, method: str) -> list[dict[str, Any]]:
        return []

    def get_request_serializer(self, path: str, method: str) -> serializers.Serializer[Any] | None:
        return self._endpoint().request_serializer if method.lower() == "post" else None

    def get_response_serializer(self, path: str, method: str) -> serializers.Serializer[Any] | None:
        view = self._endpoint()
        version = path.strip("/").split("/")[1] if path.startswith("/api/") else ""
        ser = view.serializer_for(version)
        if ser is None:
            return None
        return page_of(ser) if view.paged else ser

    def get_components(self, path: str, method: str) -> dict[str, Any]:
        components: dict[str, Any] = super().get_components(path, method)
        components["Problem"] = PROBLEM_SCHEMA
        return components

    def get_responses(self, path: str, method: str) -> dict[str, Any]:
        ser = self.get_response_serializer(path, method)
        schema = self.get_reference(ser) if ser is not None else {"type": "object"}
        ok = "201" if method.lower() == "post" else "200"
        out: dict[str, Any] = {ok: {"description": "OK", "content": {"application/json": {"schema": schema}}}}
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for code, text in _ERRORS.items():
            out[code] = {"description": text, "content": problem}
        return out


class Endpoint(APIView):
    """Base of every API endpoint (see the module docstring)."""

    schema = Schema()
    params: ClassVar[Sequence[Param]] = ()
    paged: ClassVar[bool] = False
    tag: ClassVar[str] = "api"
    operation_ids: ClassVar[dict[str, str]] = {}
    response_serializer: ClassVar[serializers.Serializer[Any] | None] = None
    request_serializer: ClassVar[serializers.Serializer[Any] | None] = None

    def declared_params(self) -> list[Param]:
        return list(self.params)

    def serializer_for(self, version: str) -> serializers.Serializer[Any] | None:
        """The answer's serializer in one API version (the same in all, unless a version changed it)."""
        return self.response_serializer

    def all_params(self) -> list[Param]:
        out = self.declared_params()
        if self.paged:
            api = settings.CONFIG.api
            out += [
                Param("page", "Page number (from 1).", int_between(1, 1_000_000), {"type": "integer", "minimum": 1}),
                Param("page_size", f"Items per page (default {api.page_size_default}, at most {api.page_size_max}).",
                      int_between(1, api.page_size_max),
                      {"type": "integer", "minimum": 1, "maximum": api.page_size_max}),
            ]
        return out

    def query(self, request: Request) -> dict[str, Any]:
        return parse_query(dict(request.query_params.lists()), self.all_params())

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, AgentError):
            exc = ServiceUnavailable(str(exc))
        return super().handle_exception(exc)

    def paginate(self, request: Request, values: dict[str, Any], items: Sequence[Any], total: int | None = None,
                 already_sliced: bool = False) -> dict[str, Any]:
        """One page of ``items`` (all items, unless ``already_sliced`` with ``total`` given)."""
        page = values.get("page", 1)
        size = values.get("page_size", settings.CONFIG.api.page_size_default)
        count = len(items) if total is None else total
        pages = max(1, math.ceil(count / size))
        if page > pages and count:
            raise BadParameter("page", f"there are {pages} pages of {size}")
        chosen = items if already_sliced else items[(page - 1) * size: page * size]
        ser = self.response_serializer
        assert ser is not None
        next_url = None
        if page < pages:
            query = {k: v[-1] for k, v in request.query_params.lists()} | {"page": str(page + 1)}
            next_url = f"{request.path}?{urlencode(query)}"
        return {"count": count, "page": page, "page_size": size, "next": next_url,
                "results": type(ser)(chosen, many=True).data}

    def page_bounds(self, values: dict[str, Any]) -> tuple[int, int]:
        """``(limit, offset)`` of the requested page, for a query that pages in SQL."""
        page = values.get("page", 1)
        size = values.get("page_size", settings.CONFIG.api.page_size_default)
        return size, (page - 1) * size

"""Template helpers: number formats and query strings for links."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template
from django.http import QueryDict

from ..tables import NONE_TEXT

register = template.Library()


@register.filter
def hours(value: Any) -> str:
    if value is None:
        return NONE_TEXT
    v = float(value)
    if v >= 48:
        return f"{v / 24:.1f} days"
    if v >= 1:
        return f"{v:.1f} h"
    return f"{v * 60:.0f} min"


@register.filter
def percent(value: Any) -> str:
    return NONE_TEXT if value is None else f"{100 * float(value):.1f} %"


@register.filter
def num(value: Any, digits: int = 2) -> str:
    return NONE_TEXT if value is None else f"{float(value):.{int(digits)}f}"


@register.simple_tag
def with_query(query: QueryDict | dict[str, Any], **changes: Any) -> str:
    """The current query string with some parameters replaced (None removes one)."""
    base: dict[str, Any] = {k: (query.getlist(k) if isinstance(query, QueryDict) else [v])[-1] for k, v in
                            query.items()}
    for key, value in changes.items():
        if value is None or value == "":
            base.pop(key, None)
        else:
            base[key] = value
    return "?" + urlencode(base)

"""API routes: every endpoint under each version (``/api/v1/...``, ``/api/v2/...``); the version is a URL
kwarg for DRF's URLPathVersioning. Login is not required here as it is for pages: the API answers 401
itself (token or session authentication), never a redirect to the login page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, path

from ..config import API_VERSIONS
from . import views

app_name = "api"


def _versioned() -> list[URLPattern]:
    out = []
    for version in API_VERSIONS:
        for route, view, name in views.endpoints():
            out.append(path(f"api/{version}/{route}", login_not_required(view.as_view()), {"version": version},
                            name=name))
        out.append(path(f"api/{version}/schema", login_not_required(views.OpenApi.as_view()), {"version": version},
                        name="schema"))
    return out


urlpatterns = [
    path("healthz", login_not_required(views.healthz), name="healthz"),
    path("api/versions", login_not_required(views.Versions.as_view()), name="versions"),
    path("api/", views.docs, name="docs"),
    *_versioned(),
]

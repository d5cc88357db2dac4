from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.urls import path, re_path

from . import views

app_name = "api"
V = r"^api/(?P<version>v1|v2)/"
urlpatterns = [
    path("healthz", login_not_required(views.healthz), name="healthz"),
    path("api/versions", login_not_required(views.Versions.as_view()), name="versions"),
    path("api/", views.docs, name="docs"),
    re_path(V + r"live$", login_not_required(views.Live.as_view()), name="live"),
]

"""URL map: pages (login required everywhere, LoginRequiredMiddleware), the admin, and the API."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from .core import views as core_views

handler400 = core_views.bad_request
handler403 = core_views.permission_denied
handler404 = core_views.not_found
handler500 = core_views.server_error

admin.site.site_header = "IACT administration"
admin.site.site_title = "IACT admin"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dora:dashboard", permanent=False), name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("dora/", include("iact_web.dora.urls")),
    path("ops/", include("iact_web.ops.urls")),
    path("logs/", include("iact_web.logs.urls")),
    path("", include("iact_web.api.urls")),
]

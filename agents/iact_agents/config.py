"""Typed configuration: one frozen pydantic model per agent, validated at start-up.

Precedence, lowest first: the model's defaults < the TOML file < environment variables < CLI overrides.
Environment variables are ``<PREFIX>__<FIELD>[__<SUBFIELD>...]`` (for example
``IACT_DORA__MYSQL__HOST``). Secrets are never written in the config itself: a ``*_file`` field names a
file (mode 0600 or 0640) and :func:`read_secret_file` reads it; the value is kept in a
:class:`pydantic.SecretStr` so that ``repr`` and logs show ``**********``.
"""

from __future__ import annotations

import os
import ssl
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, ValidationError, model_validator

from .errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


def comma_list(value: Any) -> Any:
    """A list given as comma-separated text (how an environment variable carries one) becomes a list."""
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return value


CommaList = Annotated[list[str], BeforeValidator(comma_list)]
"""A list of strings that the environment may give as ``a,b,c``."""


class FrozenModel(BaseModel):
    """Base for config models: immutable, and unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def env_overrides(prefix: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Collect ``PREFIX__A__B=value`` variables into ``{"a": {"b": "value"}}`` (keys lower-cased)."""
    environ = os.environ if environ is None else environ
    lead = prefix.upper() + "__"
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if name.startswith(lead) and len(name) > len(lead):
            _set_path(tree, [p.lower() for p in name[len(lead) :].split("__")], value)
    return tree


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """One line that names the first offending field, e.g. ``config.toml: mysql.port: Input should be ...``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more)" if more else ""
    return f"{source}: {where}: {first['msg']}{suffix}"


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: config file is not readable by this user") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_config(
    model: type[ModelT],
    path: Path | None,
    *,
    env_prefix: str,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ModelT:
    """Build ``model`` from defaults < file < environment < overrides, or raise :class:`ConfigError`."""
    data: dict[str, Any] = read_toml(path) if path is not None else {}
    data = _merge(data, env_overrides(env_prefix, environ))
    data = _merge(data, overrides or {})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, str(path) if path else "config")) from None


def read_secret_file(path: Path) -> SecretStr:
    """Read a one-line secret from a file that only its owner (and group) may read."""
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: credential file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: credential file is not readable by this user") from None
    if st.st_mode & stat.S_IRWXO:
        raise ConfigError(f"{path}: credential file is readable by others; chmod 0600 (or 0640) it")
    value = text.strip()
    if not value:
        raise ConfigError(f"{path}: credential file is empty")
    return SecretStr(value)


class CqlCredentials(FrozenModel):
    """A Cassandra login: ``username`` with the file holding its password, both or neither."""

    username: str | None = None
    password_file: Path | None = None
    """File (mode 0600/0640) holding the password of ``username``."""

    @model_validator(mode="after")
    def _credentials_together(self) -> CqlCredentials:
        if (self.username is None) != (self.password_file is None):
            raise ValueError("username and password_file go together: set both or neither")
        return self

    def password(self) -> SecretStr | None:
        return read_secret_file(self.password_file) if self.password_file is not None else None


class CqlClient(CqlCredentials):
    """A Cassandra client: its login and its TLS. With ``ssl_ca_file`` every connection is TLS and the node's
    certificate must chain to that CA and name the address the client connects to (nodes are reached by
    address: their certificates name them as IP addresses, roles/pki); without it, plain CQL."""

    ssl_ca_file: Path | None = None
    """CA certificate (PEM) the nodes' certificates must chain to (``/etc/ssl/iact/ca.crt`` on the hosts)."""

    def ssl_context(self) -> ssl.SSLContext | None:
        """The driver's TLS context (``Cluster(ssl_context=...)``), or None for plain CQL."""
        return verifying_context(self.ssl_ca_file) if self.ssl_ca_file is not None else None


def verifying_context(ca_file: Path) -> ssl.SSLContext:
    """A client TLS context that trusts only ``ca_file`` and checks the server's name (TLS 1.2 or later)."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    except ssl.SSLError as exc:  # an OSError too: first
        raise ConfigError(f"{ca_file}: not a CA certificate in PEM ({exc.reason or exc})") from None
    except FileNotFoundError:
        raise ConfigError(f"{ca_file}: CA certificate not found") from None
    except PermissionError:
        raise ConfigError(f"{ca_file}: CA certificate is not readable by this user") from None
    except OSError as exc:  # a folder, an I/O error
        raise ConfigError(f"{ca_file}: CA certificate cannot be read ({exc.strerror or exc})") from None
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context

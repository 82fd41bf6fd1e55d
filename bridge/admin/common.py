"""What every admin page shares: the blueprint, the signed-in admin, the audit trail of admin
actions, the clocks, WHMCS access, pagination and CSV answers."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, TypeVar

from flask import Blueprint, Response, g, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from bridge import accounts
from bridge.model import AuditEntry
from bridge.runtime import Runtime, runtime
from bridge.whmcs import WhmcsClient

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates",
               static_folder="static")

PUBLIC_ENDPOINTS = {"admin.login", "admin.static"}
F = TypeVar("F", bound=Callable[..., Any])


@bp.before_request
def _require_login() -> BaseResponse | None:
    """Login required everywhere under /admin (the login page and its CSS excepted)."""
    g.admin = None
    name, print_ = session.get("admin"), session.get("fp")
    if name and print_ and accounts.session_valid(runtime().store, name, print_):
        g.admin = name
        return None
    if name:  # a password changed or the account is gone: the session ends
        session.clear()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    target = request.full_path if request.method == "GET" else url_for("admin.overview")
    return redirect(url_for("admin.login", next=target.rstrip("?")))


def admin_name() -> str:
    """The signed-in admin (views run only after the login check)."""
    name = g.get("admin")
    assert name, "admin views run after the login check"
    return str(name)


def rt() -> Runtime:
    return runtime()


def service_now() -> datetime:
    """The service's clock (sessions, throttling, the inbox)."""
    return runtime().clock()


def business_now() -> datetime:
    """The business clock (what "today" is for the policy; the demo runs it ahead)."""
    engine = runtime().engine
    return engine.now() if engine is not None else runtime().clock()


def business_today() -> date:
    return runtime().business_today()


def audit(action: str, *, client_id: int | None = None, ticket_id: int | None = None,
          before: str | None = None, after: str | None = None,
          reasons: Sequence[str] = ()) -> None:
    """Record an admin action in the audit log under the admin's name."""
    runtime().store.add_audit([AuditEntry(business_now(), admin_name(), action, client_id,
                                          ticket_id, before, after, tuple(reasons))])


PAGE_WHMCS_TIMEOUT = 5.0  # seconds: a page waits at most this long for one WHMCS answer


def whmcs() -> WhmcsClient | None:
    """A WHMCS API client for this request (one attempt, at most ``PAGE_WHMCS_TIMEOUT`` s, so
    a page with WHMCS down answers quickly with a notice), or None when ``[whmcs] url`` is
    not set."""
    engine = runtime().engine
    if engine is None:
        return None
    client = g.get("vipgate_whmcs")
    if client is None:
        configured = engine.settings.whmcs
        client = WhmcsClient(replace(configured, timeout_seconds=min(
            configured.timeout_seconds, PAGE_WHMCS_TIMEOUT)), attempts=1)
        g.vipgate_whmcs = client
    return client


@bp.teardown_request
def _close_whmcs(_exc: BaseException | None) -> None:
    client = g.pop("vipgate_whmcs", None)
    if client is not None:
        client.close()


@dataclass(frozen=True)
class Page:
    """One page of a paginated list (``?page=N``, 1-based)."""

    number: int
    size: int
    total: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def page_from_request(total: int, size: int = 50) -> Page:
    try:
        number = int(request.args.get("page", "1"))
    except ValueError:
        number = 1
    pages = max(1, math.ceil(total / size))
    return Page(min(max(number, 1), pages), size, total)


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """A CSV download. Cells that a spreadsheet would run as a formula are quoted with '."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_safe_cell(v) for v in row])
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


def _safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def back_to(default_endpoint: str, **values: Any) -> BaseResponse:
    """Redirect to ``next`` when it is a path on this site, else to the endpoint."""
    target = request.form.get("next") or request.args.get("next") or ""
    if target.startswith("/admin") and not target.startswith("//"):
        return redirect(target)
    return redirect(url_for(default_endpoint, **values))

"""The overview (``/admin/``): can vipgate reach WHMCS (API and database) and its own database,
how full is the inbox, when did the last full reconcile run, and what in vipgate's settings or
WHMCS's works against the policy.

Every check degrades to a line on the page, never an error page. The slow ones (WHMCS's
settings and the API permission probe, the WHMCS database) are kept :data:`CHECK_TTL` per
process; WHMCS's reachability is /healthz's own cached check (``bridge.whmcs.probe``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import abort, current_app, flash, render_template, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from bridge import first_run
from bridge.admin.common import admin_name, audit, back_to, bp, business_now, rt
from bridge.admin.localtime import shown
from bridge.checks import (
    NEEDED_ACTIONS,
    WRITE_ACTIONS,
    WhmcsFacts,
    bridge_version,
    config_warnings,
    database_error,
    facts_warnings,
    read_facts,
    stub_warnings,
    whmcs_database_status,
)
from bridge.checks import is_permission_denied as denied
from bridge.i18n import N_, why
from bridge.runtime import whmcs_probe
from bridge.settings import Settings, WhmcsSettings, shown_url
from bridge.store.meta import StubReport
from bridge.store.snapshots import last_full_reconcile
from bridge.whmcs import WhmcsClient, WhmcsError

log = logging.getLogger("vipgate.admin")

CHECK_TTL = timedelta(seconds=60)
WHMCS_TIMEOUT_SECONDS = 3.0  # per call
FACTS_BUDGET_SECONDS = 8.0  # the permission probe stops asking after this
_CACHE_KEY = "vipgate.admin_overview_checks"
_cache_lock = threading.Lock()
UNREACHABLE = N_("unknown: vipgate's database is not reachable")
T = TypeVar("T")


@dataclass(frozen=True)
class Check:
    """One line of the page: ``ok`` None when there is nothing to check; ``text`` a
    ``bridge.model.Reason`` (shown in the reader's language)."""

    ok: bool | None
    text: str
    checked_at: datetime | None = None


class SlowChecks:
    """Results of slow checks, each kept ``ttl`` (thread-safe: while one request checks a
    key, the others wait for its answer instead of asking too; other keys do not wait)."""

    def __init__(self, ttl: timedelta = CHECK_TTL) -> None:
        self.ttl = ttl
        self._locks_lock = threading.Lock()
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._kept: dict[tuple[Any, ...], tuple[datetime, Any]] = {}

    def get(self, key: tuple[Any, ...], now: datetime,
            compute: Callable[[], T]) -> tuple[T, datetime]:
        """(the value, when it was computed)."""
        with self._locks_lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] <= now < kept[0] + self.ttl:
                return kept[1], kept[0]
            value = compute()
            self._kept[key] = (now, value)
            return value, now


def slow_checks() -> SlowChecks:
    """This app's cache, made on first use."""
    with _cache_lock:
        checks = current_app.extensions.get(_CACHE_KEY)
        if checks is None:
            checks = current_app.extensions[_CACHE_KEY] = SlowChecks()
        return checks


# --- the checks ------------------------------------------------------------------------------


def whmcs_api(settings: Settings) -> Check:
    if not settings.whmcs.url:
        return Check(None, why.gettext("not configured: [whmcs] url is empty, vipgate cannot "
                                       "reach WHMCS"))
    status = whmcs_probe().status(settings.whmcs, rt().clock)
    at = datetime.fromisoformat(status["checked_at"])
    if status["ok"]:
        return Check(True, why.gettext("reachable (%(where)s)", where=settings.whmcs.url), at)
    return Check(False, why.gettext("not usable (%(where)s): %(error)s",
                                    where=settings.whmcs.url, error=str(status["error"])), at)


def _read_facts(whmcs: WhmcsSettings) -> WhmcsFacts | str:
    """WHMCS's settings and the permission probe, or why they could not be read."""
    quick = dataclasses.replace(
        whmcs, timeout_seconds=min(whmcs.timeout_seconds, WHMCS_TIMEOUT_SECONDS))
    try:
        with WhmcsClient(quick, attempts=1) as client:
            return read_facts(client, deadline=time.monotonic() + FACTS_BUDGET_SECONDS)
    except WhmcsError as exc:
        return str(exc)
    except Exception as exc:  # the page must answer whatever the client raises
        log.exception("overview: reading WHMCS's settings failed unexpectedly")
        return why.gettext("unexpected error (%(error)s)", error=type(exc).__name__)


def whmcs_facts(settings: Settings, api: Check) -> tuple[WhmcsFacts | str | None, datetime | None]:
    """The cached facts (or the error text); None when WHMCS's API is not usable."""
    if not api.ok:
        return None, None
    key = ("facts", settings.whmcs.url, settings.whmcs.identifier)
    return slow_checks().get(key, rt().clock(), lambda: _read_facts(settings.whmcs))


def _whmcs_database(url: str) -> Check:
    try:
        ok, text = whmcs_database_status(url)
    except Exception as exc:  # the page must answer whatever the driver raises
        log.exception("overview: WHMCS database check failed unexpectedly")
        return Check(False, why.gettext("WHMCS database at %(url)s: unexpected error "
                                        "(%(error)s)", url=shown_url(url),
                                        error=type(exc).__name__))
    return Check(ok, why.gettext("reachable (%(where)s)", where=text) if ok else text)


def whmcs_database(settings: Settings) -> Check:
    url = settings.whmcs.database_url
    if not url:
        return Check(None, why.gettext("not configured ([whmcs] database_url is empty): "
                                       "vipgate reads WHMCS through its API"))
    check, at = slow_checks().get(("whmcs_db", url), rt().clock(),
                                  lambda: _whmcs_database(url))
    return dataclasses.replace(check, checked_at=at)


def vipgate_database() -> tuple[Check, dict[str, int] | None, int | None]:
    """(the check, inbox depth by state, settings saved from the page)."""
    from bridge.overrides import saved_values

    store = rt().store
    try:
        store.ping()
        check = Check(True, why.gettext(
            "reachable (%(dialect)s, %(url)s, revision %(revision)s)",
            dialect=store.engine.dialect.name, url=shown_url(store.url),
            revision=str(store.revision())))
        return check, store.inbox_counts(), len(saved_values(store))
    except sa.exc.SQLAlchemyError as exc:
        return Check(False, database_error(exc, store.url)), None, None


def last_reconcile() -> dict[str, Any] | str | None:
    """The last full reconcile (``bridge.store.snapshots``); None: never; a str: why it is
    unreadable."""
    try:
        return last_full_reconcile(rt().store)
    except sa.exc.SQLAlchemyError:
        return UNREACHABLE
    except ValueError as exc:
        return str(exc)


class ConfirmFirstRunForm(FlaskForm):
    """The "Confirm" button of the first full reconcile (its CSRF token only)."""


def first_run_state() -> first_run.WaitingPlan | first_run.Confirmation | str | None:
    """The plan waiting for confirmation, or who confirmed; a str: why it is unknown."""
    try:
        return first_run.waiting_plan(rt().store) or first_run.confirmation(rt().store)
    except sa.exc.SQLAlchemyError:
        return UNREACHABLE
    except ValueError as exc:
        return str(exc)


@bp.route("/first-run/confirm", methods=["POST"], endpoint="confirm_first_run")
def confirm_first_run() -> Response:
    """From now on WHMCS's cron applies full reconciles (the next one re-plans first)."""
    if not ConfirmFirstRunForm().validate_on_submit():
        abort(400)
    store = rt().store
    waiting = first_run.waiting_plan(store)
    if waiting is not None:
        first_run.confirm(store, by=admin_name(), at=business_now())
        audit("first_reconcile_confirmed", reasons=(why.gettext(
            "the first full reconcile was confirmed; the plan shown: %(plan)s",
            plan=first_run.describe(waiting.summary)),))
        flash(_("Confirmed: the next WHMCS cron run (or vipgate resync) applies the full "
                "reconcile."), "ok")
    return back_to("admin.overview")


def stub_report() -> StubReport | None:
    """What the PHP stub last reported (version, rejected events); None: unreadable."""
    try:
        return rt().store.stub_report()
    except (sa.exc.SQLAlchemyError, ValueError):
        return None


def permission_rows(facts: WhmcsFacts) -> list[tuple[str, str, str]]:
    """(action, read/write, allowed/missing/not checked) for every needed action."""
    rows = []
    for action in NEEDED_ACTIONS:
        kind = N_("write") if action in WRITE_ACTIONS else N_("read")
        if action not in facts.answers:
            state = N_("not checked")
        else:
            message = facts.answers[action]
            state = "missing" if message is not None and denied(message) else "allowed"
        rows.append((action, kind, state))
    return rows


# --- the page ---------------------------------------------------------------------------------


@bp.route("/", endpoint="overview")
def view() -> str:
    settings = rt().settings
    api = whmcs_api(settings)
    facts, facts_at = whmcs_facts(settings, api)
    policy_warnings: list[str] = []
    facts_note = ""
    if isinstance(facts, WhmcsFacts):
        policy_warnings = facts_warnings(facts, settings.policy)
        if facts.groups is None or not facts.settings_read:
            facts_note = _("WHMCS's groups or suspension settings could not be read (see the "
                           "permissions): the policy checks against them were skipped")
        elif facts.unchecked:
            facts_note = _("WHMCS answered slowly: %(what)s not checked this time",
                           what=", ".join(facts.unchecked))
    elif isinstance(facts, str):
        facts_note = _("reading WHMCS's settings failed: %(error)s", error=facts)
    elif settings.whmcs.url:
        facts_note = _("WHMCS's API cannot be used: its settings could not be checked")
    database, counts, saved = vipgate_database()
    stub = stub_report()
    return render_template(
        "admin/overview.html", title=_("Overview"), shown=shown, api=api,
        whmcs_db=whmcs_database(settings), database=database, counts=counts, saved=saved,
        reconcile=last_reconcile(), settings=settings, first=first_run_state(),
        first_form=ConfirmFirstRunForm(), describe_plan=first_run.describe,
        config_warnings=config_warnings(settings), policy_warnings=policy_warnings,
        stub=stub, bridge_version=bridge_version(),
        stub_warnings=stub_warnings(stub, bridge_version()) if stub is not None else [],
        facts_note=facts_note, facts_at=facts_at,
        permissions=permission_rows(facts) if isinstance(facts, WhmcsFacts) else [],
        ttl=int(CHECK_TTL.total_seconds()), dead_url=url_for("admin.inbox", state="dead"))

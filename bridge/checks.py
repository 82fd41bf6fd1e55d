"""Policy warnings that need WHMCS's own settings (``vipgate check``; the admin overview).

``whmcs_warnings`` is pure: it compares vipgate's policy with what WHMCS reports — its
automatic suspension settings and its client groups. ``missing_actions`` and
``permission_warnings`` are pure too: they read the answers of :func:`probe_permissions`,
which asks WHMCS, without changing anything, whether the API credential's roles allow each
action vipgate uses. :func:`read_facts` gathers all of it in one pass and
:func:`facts_warnings` turns it into sentences, so a caller may keep the facts a while and
still judge them against the policy in force.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bridge.i18n import N_, why
from bridge.settings import PolicySettings, Settings, shown_url
from bridge.store.meta import StubReport
from bridge.whmcs import ClientGroup, WhmcsApiError, WhmcsAuthError, WhmcsClient
from bridge.whmcs.client import UNKNOWN_SETTING

# The WHMCS API actions vipgate calls (bridge/whmcs/client.py), and what each is for.
READ_ACTIONS: dict[str, str] = {
    "GetClients": N_("list clients (resync, client search)"),
    "GetClientsDetails": N_("read a client"),
    "GetInvoices": N_("read a client's invoices"),
    "GetInvoice": N_("read an invoice's balance"),
    "GetClientsProducts": N_("read a client's services (suspended standing)"),
    "GetTickets": N_("list a client's tickets"),
    "GetTicket": N_("read a ticket"),
    "GetClientGroups": N_("read the client groups (VIP group checks)"),
    "GetSupportDepartments": N_("read the support departments"),
    "GetConfigurationValue": N_("read WHMCS's automation settings"),
    "GetCurrencies": N_("read the currencies"),
    "GetTransactions": N_("read payments (vipgate backfill --source api)"),
}
WRITE_ACTIONS: dict[str, str] = {
    "UpdateClient": N_("move clients in and out of the VIP group"),
    "UpdateTicket": N_("set ticket priorities"),
    "AddTicketNote": N_("add staff notes to tickets"),
}
NEEDED_ACTIONS: tuple[str, ...] = (*READ_ACTIONS, *WRITE_ACTIONS)

# One harmless call per action. Reads ask for one row, or for an id that cannot exist; writes
# name an id that cannot exist (WHMCS ids start at 1), so they can only fail. WHMCS checks the
# credential's API roles before it looks at the parameters (whmcs-reference §2.1, §5): a role
# without the action answers 'Invalid Permissions: API action "..." is not allowed', a role
# with it gets as far as "... Not Found" (or succeeds).
PROBES: dict[str, dict[str, Any]] = {
    "GetClients": {"limitstart": 0, "limitnum": 1},
    "GetClientsDetails": {"clientid": 0},
    "GetInvoices": {"limitstart": 0, "limitnum": 1},
    "GetInvoice": {"invoiceid": 0},
    "GetClientsProducts": {"limitstart": 0, "limitnum": 1},
    "GetTickets": {"limitstart": 0, "limitnum": 1, "ignore_dept_assignments": True},
    "GetTicket": {"ticketid": 0},
    "GetClientGroups": {},
    "GetSupportDepartments": {"ignore_dept_assignments": True},
    "GetConfigurationValue": {"setting": "AutoSuspension"},
    "GetCurrencies": {},
    "GetTransactions": {"invoiceid": 0},
    "UpdateClient": {"clientid": 0},
    "UpdateTicket": {"ticketid": 0},
    "AddTicketNote": {"ticketid": 0, "message": "vipgate permission check"},
}


def whmcs_warnings(policy: PolicySettings, groups: Sequence[ClientGroup],
                   auto_suspension: str | None, auto_suspension_days: str | None) -> list[str]:
    """What makes vipgate's rule come too late or not matter, given WHMCS's settings (None:
    WHMCS does not know that setting, so what depends on it is not judged)."""
    found: list[str] = [
        why.gettext("WHMCS does not know the setting %(name)s (GetConfigurationValue answers "
                    "\"%(answer)s\"): %(what)s was not checked", name=name,
                    answer=UNKNOWN_SETTING, what=what)
        for name, value, what in (
            ("AutoSuspension", auto_suspension, why.gettext("whether the cron suspends at all")),
            ("AutoSuspensionDays", auto_suspension_days,
             why.gettext("grace_days against AutoSuspensionDays")))
        if value is None]
    found += missing_groups(policy, groups)
    vip = next((g for g in groups if g.id == policy.vip_group_id), None)
    if vip is not None and not vip.susptermexempt:
        found.append(why.gettext("VIP group %(id)s (%(name)s) is not exempt from suspension in "
                                 "WHMCS: leaving it changes nothing for the cron",
                                 id=vip.id, name=vip.name))
    if auto_suspension is not None and auto_suspension != "on":
        found.append(why.gettext("WHMCS's automatic suspension (AutoSuspension) is off: "
                                 "clients who leave VIP are not suspended by the cron"))
    elif auto_suspension is not None and auto_suspension_days is not None \
            and auto_suspension_days.strip().isdigit():
        days = int(auto_suspension_days)
        if policy.grace_days >= days:
            found.append(why.gettext(
                "[policy] grace_days = %(grace)s >= WHMCS's AutoSuspensionDays %(days)s: a "
                "client leaves VIP only after the cron would have suspended it; make "
                "grace_days smaller", grace=policy.grace_days, days=days))
    return found


SHOWN_GROUPS = 10  # WHMCS's groups named in a "no such client group" line


def missing_groups(policy: PolicySettings, groups: Sequence[ClientGroup]) -> list[str]:
    """The configured group ids WHMCS does not have (``vipgate check`` fails on them: every
    move into such a group would fail), each naming the setting, the id and WHMCS's groups."""
    listed = {g.id for g in groups}
    shown = ", ".join(f"{g.id} {g.name}" for g in groups[:SHOWN_GROUPS])
    names: str = shown or why.gettext("none")
    if len(groups) > SHOWN_GROUPS:
        names = why.gettext("%(groups)s, and %(more)s more", groups=shown,
                            more=len(groups) - SHOWN_GROUPS)
    return [why.gettext("[policy] %(key)s = %(id)s: WHMCS has no such client group (groups: "
                        "%(groups)s)", key=key, id=group_id, groups=names)
            for key, group_id in (("vip_group_id", policy.vip_group_id),
                                  ("default_group_id", policy.default_group_id))
            if group_id and group_id not in listed]


def check_whmcs(client: WhmcsClient, policy: PolicySettings) -> list[str]:
    """Read WHMCS's settings and groups through the API and return the warnings."""
    return whmcs_warnings(policy, client.get_client_groups(),
                          client.get_configuration_value("AutoSuspension"),
                          client.get_configuration_value("AutoSuspensionDays"))


# --- API credential permissions ---------------------------------------------------------------


def is_permission_denied(message: str) -> bool:
    """Whether a ``result=error`` message is WHMCS refusing the action for the API role."""
    return message.strip().lower().startswith("invalid permissions")


def probe_permissions(client: WhmcsClient, actions: Sequence[str] = NEEDED_ACTIONS, *,
                      deadline: float | None = None,
                      monotonic: Callable[[], float] = time.monotonic) -> dict[str, str | None]:
    """Call each action once with :data:`PROBES`' harmless parameters; nothing is changed.

    Returns action -> None when WHMCS answered success, else WHMCS's error message (a
    permission refusal, or "... Not Found": the role let the call through). Actions left when
    ``deadline`` (a ``monotonic`` time) has passed are not called and not in the answer.
    Raises what the credential as a whole runs into (``WhmcsAuthError`` for a wrong secret or
    IP, ``WhmcsUnavailable``): no action can be judged then."""
    answers: dict[str, str | None] = {}
    for action in actions:
        if deadline is not None and monotonic() >= deadline:
            break
        try:
            client.call(action, PROBES.get(action, {}))
            answers[action] = None
        except WhmcsAuthError as exc:
            if not is_permission_denied(exc.message):
                raise
            answers[action] = exc.message
        except WhmcsApiError as exc:
            answers[action] = exc.message
    return answers


def missing_actions(answers: Mapping[str, str | None],
                    needed: Sequence[str] = NEEDED_ACTIONS) -> list[str]:
    """The needed actions WHMCS refused for want of permission, in ``needed``'s order.
    ``answers`` is what :func:`probe_permissions` returns; an action not in it was not asked
    and is not reported."""
    return [action for action in needed
            if (message := answers.get(action)) is not None and is_permission_denied(message)]


def permission_warnings(missing: Sequence[str]) -> list[str]:
    """One sentence per action the credential lacks, saying what vipgate cannot do."""
    found: list[str] = []
    for action in missing:
        kind, purpose = (("write", WRITE_ACTIONS[action]) if action in WRITE_ACTIONS else
                         ("read", READ_ACTIONS.get(action, "")))
        found.append(why.gettext(
            "the WHMCS API credential lacks permission for %(action)s (%(kind)s): vipgate "
            "cannot %(purpose)s; allow it in the credential's API role in WHMCS (Manage API "
            "Credentials > API Roles)", action=action, kind=why.gettext(kind),
            purpose=why.gettext(purpose) if purpose else ""))
    return found


# --- everything WHMCS can tell, in one pass ---------------------------------------------------


@dataclass(frozen=True)
class WhmcsFacts:
    """What WHMCS reported: its groups and suspension settings (None when they could not be
    read) and the permission probe's answers (``unchecked``: actions not asked in time)."""

    groups: tuple[ClientGroup, ...] | None
    auto_suspension: str | None  # None: not read, or WHMCS does not know the setting
    auto_suspension_days: str | None
    answers: Mapping[str, str | None] = field(default_factory=dict)
    unchecked: tuple[str, ...] = ()

    @property
    def settings_read(self) -> bool:
        """Whether GetConfigurationValue answered (a value, or "no such setting")."""
        return "GetConfigurationValue" in self.answers \
            and self.answers["GetConfigurationValue"] is None


def read_facts(client: WhmcsClient, *, deadline: float | None = None,
               monotonic: Callable[[], float] = time.monotonic) -> WhmcsFacts:
    """Read WHMCS's groups and suspension settings, then probe every other needed action.
    Reading the settings probes their actions, so each action is called about once."""
    answers: dict[str, str | None] = {}

    def read(action: str, do: Callable[[], Any]) -> Any:
        try:
            value = do()
        except WhmcsAuthError as exc:
            if not is_permission_denied(exc.message):
                raise
            answers[action] = exc.message
            return None
        answers[action] = None
        return value

    groups = read("GetClientGroups", client.get_client_groups)
    suspension = read("GetConfigurationValue",
                      lambda: (client.get_configuration_value("AutoSuspension"),
                               client.get_configuration_value("AutoSuspensionDays")))
    rest = [a for a in NEEDED_ACTIONS if a not in answers]
    answers.update(probe_permissions(client, rest, deadline=deadline, monotonic=monotonic))
    auto_suspension, auto_suspension_days = suspension or (None, None)
    return WhmcsFacts(groups, auto_suspension, auto_suspension_days, answers=answers,
                      unchecked=tuple(a for a in NEEDED_ACTIONS if a not in answers))


def facts_warnings(facts: WhmcsFacts, policy: PolicySettings) -> list[str]:
    """Permission warnings first, then the policy warnings the facts allow judging."""
    found = permission_warnings(missing_actions(facts.answers))
    if facts.groups is not None and facts.settings_read:
        found += whmcs_warnings(policy, facts.groups, facts.auto_suspension,
                                facts.auto_suspension_days)
    return found


DATABASES = (N_("database"), N_("WHMCS database"), N_("vipgate database"))  # database_error's


def database_error(exc: sa.exc.SQLAlchemyError, url: str | None, *,
                   what: str = "database") -> str:
    """One line naming the database (password hidden; ``url`` None when it is not known) and
    the driver's reason (the driver's words, as it gave them)."""
    reason = str(getattr(exc, "orig", exc)).splitlines()[0]
    named = why.gettext(what)  # one of DATABASES, in the catalogs
    if url:
        return why.gettext("%(what)s error at %(url)s: %(reason)s", what=named,
                           url=shown_url(url), reason=reason)
    return why.gettext("%(what)s error: %(reason)s", what=named, reason=reason)


def whmcs_database_status(url: str) -> tuple[bool, str]:
    """Open the read-only WHMCS database and count its clients: (True, what was found) or
    (False, the error in one line)."""
    from bridge.resync.source_db import WhmcsDbReader

    reader = None
    try:
        reader = WhmcsDbReader(url)
        return True, why.ngettext("%(url)s, %(num)d client, read-only session",
                                  "%(url)s, %(num)d clients, read-only session",
                                  reader.count(), url=shown_url(url))
    except sa.exc.SQLAlchemyError as exc:
        return False, database_error(exc, url)
    finally:
        if reader is not None:
            reader.dispose()


def config_warnings(settings: Settings) -> list[str]:
    """Configuration that works but is probably not what the operator wants (``vipgate
    check``; the admin overview)."""
    found: list[str] = []
    if not settings.webhook.secrets:
        found.append(why.gettext("[webhook] secrets is empty: a secret generated into "
                                 "vipgate's database is used (fine for the demo; set one for "
                                 "production)"))
    if not settings.bridge.public_url:
        found.append(why.gettext("[bridge] public_url is empty: install-stub needs --url"))
    if not settings.whmcs.url:
        found.append(why.gettext("[whmcs] url is empty: vipgate cannot reach WHMCS's API"))
    policy = settings.policy
    if not policy.vip_group_id:
        found.append(why.gettext("[policy] vip_group_id is 0: no VIP group is managed"))
    elif policy.promote_by_rules and not policy.min_spend:
        found.append(why.gettext(
            "[policy] promote_by_rules is on and min_spend is 0: every Active client of at "
            "least %(months)s months without a late payment is eligible, and the next "
            "reconcile moves those who pay into VIP (exempt from suspension); set min_spend, "
            "min_tenure_months to narrow it", months=policy.min_tenure_months))
    return found


def credential_problems(settings: Settings) -> list[str]:
    """What makes every call to WHMCS's API fail before it is made: an empty identifier or
    secret (WHMCS would only answer "Authentication Failed")."""
    if not settings.whmcs.url:
        return []
    return [why.gettext("[whmcs] %(key)s is empty: set the API credential's %(key)s (WHMCS: "
                        "Setup > Staff Management > Manage API Credentials)", key=key)
            for key in ("identifier", "secret") if not getattr(settings.whmcs, key)]


def operator_warnings(settings: Settings, *, config_file: Path | None) -> list[str]:
    """What ``vipgate check`` tells about a production installation (never run by the demo):
    a config file others can read, session cookies sent without HTTPS."""
    found: list[str] = []
    if config_file is not None and config_file.is_file():
        mode = stat.S_IMODE(config_file.stat().st_mode)
        if mode & 0o007:
            octal = f"{mode:04o}"
            found.append(why.gettext(
                "%(file)s is readable by other users (mode %(mode)s): it holds WHMCS's API "
                "secret and the webhook secrets; chmod 600 %(file)s", file=str(config_file),
                mode=octal))
    if not settings.admin.secure_cookies:
        found.append(why.gettext(
            "[admin] secure_cookies is off: the admin page's session cookie is also sent over "
            "plain HTTP (only the demo, on loopback, needs that); serve /admin over HTTPS and "
            "turn it on"))
    return found


# --- what the PHP stub reports ----------------------------------------------------------------


def bridge_version() -> str:
    """This bridge's version."""
    from bridge import __version__

    return __version__


def stub_warnings(report: StubReport, bridge: str) -> list[str]:
    """A stub of another version than the bridge, and the events the bridge refused that the
    stub keeps (its heartbeat's report), one line each."""
    found: list[str] = []
    if report.version is not None and report.version != bridge:
        sent = (why.gettext("version %(version)s", version=report.version) if report.version
                else why.gettext("no version (older than this bridge)"))
        found.append(why.gettext(
            "the PHP stub in WHMCS sends %(sent)s, this bridge is %(bridge)s: run vipgate "
            "install-stub with this bridge's version (events the one does not know the other "
            "may leave out)", sent=sent, bridge=bridge))
    if report.rejected_count:
        refused = why.gettext(
            "the bridge refused %(count)s event(s) the PHP stub keeps as rejected in "
            "mod_vipgate_spool (30 days)", count=report.rejected_count)
        found.append(why.gettext("%(refused)s; last: %(last)s", refused=refused,
                                 last=rejected_line(report.rejected[0]))
                     if report.rejected else refused)
    return found


def rejected_line(event: Mapping[str, Any]) -> str:
    """One rejected event as a line: when, hook, webhook id, why."""
    reason = str(event.get("reason", "") or "")
    return why.gettext("%(at)s %(hook)s %(id)s: %(reason)s",
                       at=str(event.get("rejected_at", "?")), hook=str(event.get("hook", "?")),
                       id=str(event.get("webhook_id", "?")),
                       reason=reason or why.gettext("no reason given"))

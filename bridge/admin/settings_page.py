"""Settings (/admin/settings): every ``[policy]`` and ``[tickets]`` key, checked like the file,
saved over it (``bridge.overrides``), audited, and in force at once in this process and within
a few seconds in the others.

Groups and departments are picked from WHMCS's own lists when WHMCS answers, else typed as ids.
The block messages are previewed server-side with a sample client, through the gate's own
formatting. Every action works without JavaScript: one form, whose buttons say what to do
(save, preview, or reset one key to the configured value).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import pgettext
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import Field, HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField

# types-WTForms (3.2) predates SelectChoice (WTForms 3.3).
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.fields.core import UnboundField

from bridge import overrides
from bridge.admin.common import (
    admin_name,
    audit,
    bp,
    business_now,
    business_today,
    page_from_request,
    rt,
    whmcs,
)
from bridge.admin.language import current
from bridge.checks import whmcs_warnings
from bridge.engine.names import save_names
from bridge.i18n import N_
from bridge.model import TICKET_PRIORITIES, CachedStanding, OverdueInvoice
from bridge.policy.gate import render_block_message
from bridge.runtime import utc_now
from bridge.settings import Settings, declared
from bridge.whmcs import ClientGroup, Department, WhmcsError

log = logging.getLogger("vipgate.admin")

SECTION_TITLES = {"policy": N_("Policy: standing and VIP"), "tickets": N_("Tickets"),
                  "panels": N_("Inside WHMCS"), "trust": N_("Trust unlock")}
MESSAGE_LANGUAGES = {"block_message_pt_br": "pt_BR", "block_message_en": "en"}
NO_GROUP = {"vip_group_id": N_("none (no VIP group yet)"), "default_group_id": N_("no group")}
HISTORY_PAGE_SIZE = 20
# The values of the choices, as the configuration file writes them, for people: in Portuguese
# the option reads "Alta (High)", "ligado (on)"; in English it is the value itself.
# WHMCS's ticket priorities are named as the panels name them.
VALUE_WORDS = {"on": N_("on"), "off": N_("off"), "keep": N_("keep"),
               "suspended": N_("suspended"), "overdue": N_("overdue"), "never": N_("never"),
               "move_and_reply": N_("move_and_reply"), "reply": N_("reply")}


def field_name(section: str, key: str) -> str:
    return f"{section}-{key}"


# --- what WHMCS says -------------------------------------------------------------------------


@dataclass(frozen=True)
class WhmcsLists:
    """WHMCS's groups and departments (None when it could not be read, with ``notice``
    saying why, in the page's language) and the policy warnings its settings give
    (``bridge.model.Reason``s)."""

    groups: tuple[ClientGroup, ...] | None = None
    departments: tuple[Department, ...] | None = None
    warnings: tuple[str, ...] = ()
    notice: str | None = None

    def group_name(self, group_id: int) -> str | None:
        return next((g.name for g in self.groups or () if g.id == group_id), None)

    def department_name(self, department_id: int) -> str | None:
        return next((d.name for d in self.departments or () if d.id == department_id), None)


def read_whmcs(settings: Settings) -> WhmcsLists:
    try:
        client = whmcs()
        if client is None:
            return WhmcsLists(notice=_("WHMCS is not configured ([whmcs] url is empty): groups "
                                       "and departments are typed as ids below; check them in "
                                       "WHMCS."))
        groups, departments = client.get_client_groups(), client.get_support_departments()
        save_names(rt().store, groups, departments, utc_now())  # what the other pages show
    except WhmcsError as exc:
        log.warning("settings page: cannot read WHMCS's groups and departments: %s", exc)
        return WhmcsLists(notice=_("WHMCS could not be read (%(error)s): groups and "
                                   "departments are typed as ids below; check them in WHMCS.",
                                   error=exc))
    try:
        warnings = whmcs_warnings(settings.policy, groups,
                                  client.get_configuration_value("AutoSuspension"),
                                  client.get_configuration_value("AutoSuspensionDays"))
    except WhmcsError as exc:
        warnings = [_("WHMCS's automatic suspension settings could not be read (%(error)s): "
                      "grace_days was not compared with AutoSuspensionDays", error=exc)]
    return WhmcsLists(groups, departments, tuple(warnings))


# --- the form --------------------------------------------------------------------------------


def _group_choices(lists: WhmcsLists, key: str, known: set[int]) -> list[SelectChoice]:
    """"No group", WHMCS's groups (the exempt ones marked), and any id in force or configured
    that WHMCS does not list (so that it is seen, not silently replaced)."""
    choices = [SelectChoice("0", _(NO_GROUP[key]))]
    for group in lists.groups or ():
        label = f"{group.name} (#{group.id})"
        choices.append(SelectChoice(str(group.id), _("%(group)s · exempt from suspension",
                                                     group=label)
                                    if group.susptermexempt else label))
    listed = {g.id for g in lists.groups or ()}
    return choices + [SelectChoice(str(i), _("#%(id)s: not a WHMCS group", id=i))
                      for i in sorted(known - listed - {0})]


def _department_choices(lists: WhmcsLists, known: set[int]) -> list[SelectChoice]:
    choices = [SelectChoice(str(d.id), f"{d.name} (#{d.id})") for d in lists.departments or ()]
    listed = {d.id for d in lists.departments or ()}
    return choices + [SelectChoice(str(i), _("#%(id)s: not a WHMCS department", id=i))
                      for i in sorted(known - listed)]


def _option(value: str) -> SelectChoice:
    """A choice's option: its value, named in the page's language beside it."""
    word = (pgettext("ticket priority", value) if value in TICKET_PRIORITIES
            else _(VALUE_WORDS.get(value, value)))
    return SelectChoice(value, value if word == value else _("%(word)s (%(value)s)",
                                                             word=word, value=value))


def _ids(text: str) -> set[int]:
    return {int(p) for p in text.replace(",", " ").split() if p.isdigit()}


def _make_field(section: str, key: str, lists: WhmcsLists, known: str) -> UnboundField[Field]:
    """The input for one key, unbound (what ``SelectField(...)`` in a form class body makes);
    ``known``: the values in force and configured, as text."""
    info = overrides.key_info(section, key)
    label = _(declared(section, key).label)
    attrs: dict[str, Any] = {"aria-describedby": f"{field_name(section, key)}-help"}
    if key in NO_GROUP and lists.groups is not None:
        return UnboundField(SelectField, label, choices=_group_choices(lists, key, _ids(known)),
                            validate_choice=False, render_kw=attrs)
    if info.kind == "ids" and lists.departments is not None:
        return UnboundField(SelectMultipleField, label,
                            choices=_department_choices(lists, _ids(known)),
                            validate_choice=False, render_kw=attrs)
    if info.kind in ("bool", "choice"):
        options = ("on", "off") if info.kind == "bool" else info.choices
        return UnboundField(SelectField, label, choices=[_option(o) for o in options],
                            validate_choice=False, render_kw=attrs)
    if info.kind == "template":
        return UnboundField(TextAreaField, label,
                            render_kw={**attrs, "rows": 3, "maxlength": 1000})
    if info.kind == "int":
        attrs.update(type="number", min=info.lo, max=info.hi, step=1, inputmode="numeric")
    elif info.kind == "money":
        attrs.update(type="number", min=0, step="0.01", inputmode="decimal")
    elif info.kind == "ids":
        attrs.update(placeholder=_("ids, e.g. 1, 4"), inputmode="numeric")
    return UnboundField(StringField, label, render_kw=attrs)


def build_form(lists: WhmcsLists, in_force: Settings, base: Settings,
               version: int) -> FlaskForm:
    """The settings form over the values in force (what a POST sent, when it is one)."""

    class SettingsForm(FlaskForm):
        version = HiddenField()

    data: dict[str, Any] = {"version": str(version)}
    for section, key in overrides.editable_keys():
        shown = overrides.text_of(in_force, section, key)
        known = f"{shown},{overrides.text_of(base, section, key)}"
        made = _make_field(section, key, lists, known)
        setattr(SettingsForm, field_name(section, key), made)
        multiple = made.field_class is SelectMultipleField
        data[field_name(section, key)] = shown.split(",") if multiple and shown else (
            [] if multiple else shown)
    return SettingsForm(data=data)


def submitted() -> dict[tuple[str, str], str]:
    """The values the form sent; a key the form did not send is left as it is. A multiple
    choice sends one value per pick after an empty one (so none picked still says "none")."""
    wanted = {}
    for section, key in overrides.editable_keys():
        name = field_name(section, key)
        if name in request.form:
            values = request.form.getlist(name)
            wanted[(section, key)] = (",".join(v for v in values if v.strip())
                                      if overrides.key_info(section, key).kind == "ids"
                                      else values[0])
    return wanted


def unchanged_since_shown(wanted: dict[tuple[str, str], str]) -> list[tuple[str, str]]:
    """Keys someone else changed after this form was shown, which this admin left as shown:
    they are not sent back (that would undo the other change)."""
    try:
        seen = int(request.form.get("version", ""))
    except ValueError:
        return []
    kept = []
    for item, shown in overrides.changed_since(rt().store, seen).items():
        try:
            if item in wanted and overrides.parse(*item, wanted[item]) == shown:
                kept.append(item)
        except ValueError:
            continue
    return kept


# --- previews, descriptions, history ---------------------------------------------------------


def sample_client(language: str) -> CachedStanding:
    """A sample blocked client: two invoices, 12 days overdue, in the message's currency."""
    due = (business_today() - timedelta(days=12)).isoformat()
    prefix = "R$ " if language == "pt_BR" else "$"
    return CachedStanding(0, "suspended", 12, Decimal("189.80"),
                          (OverdueInvoice(1042, "1042", Decimal("89.90"), due),
                           OverdueInvoice(1057, "1057", Decimal("99.90"), due)),
                          prefix, "", "portuguese-br" if language == "pt_BR" else "english",
                          business_now())


def describe(section: str, key: str, text: str, lists: WhmcsLists) -> str:
    """A value as an admin reads it: group and department names beside their ids."""
    if key in NO_GROUP and text.isdigit():
        name = _(NO_GROUP[key]) if text == "0" else lists.group_name(int(text))
        return f"{text} ({name})" if name else text
    if overrides.key_info(section, key).kind == "ids":
        parts = [f"{i} ({n})" if (n := lists.department_name(i)) else str(i)
                 for i in sorted(_ids(text))]
        return ", ".join(parts) or _("none")
    return text


def shorten(text: str | None, limit: int = 48) -> str:
    text = "" if text is None else text
    return text if len(text) <= limit else text[:limit - 1] + "…"


def local_time(moment: datetime, zone: str) -> str:
    """A stored (naive UTC) time in WHMCS's time zone."""
    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Row:
    section: str
    key: str
    name: str
    help: str
    field: Field
    kind: str
    overridden: bool
    configured: str  # the file's (or environment's) value, described
    note: str = ""
    preview: str | None = None


# --- the view --------------------------------------------------------------------------------


@bp.route("/settings", methods=["GET", "POST"], endpoint="settings")
def view() -> Response | tuple[str, int]:
    """The form (GET); save, preview or reset (POST; CSRFProtect has checked the token)."""
    runtime = rt()
    version = overrides.version(runtime.store)  # before the settings: they are at least as new
    in_force, base = runtime.live.reload(), runtime.live.base
    errors: dict[tuple[str, str], str] = {}
    status, previewing = 200, False
    if request.method == "POST":
        if "reset" in request.form:
            return reset(request.form["reset"], base)
        wanted = submitted()
        if request.form.get("action") == "preview":
            previewing = True
            for item, value in wanted.items():
                try:
                    overrides.parse(*item, value)
                except ValueError as exc:
                    errors[item] = overrides.problem(exc)
        else:
            kept = unchanged_since_shown(wanted)
            changes, errors = overrides.save(
                runtime.store, base, {k: v for k, v in wanted.items() if k not in kept},
                actor=admin_name(), now=business_now())
            if not errors:
                return finish(changes, kept)
            status = 400
    # Rendered: what WHMCS lists, over the values in force (or those just sent, kept as typed)
    lists = read_whmcs(in_force)
    form = build_form(lists, in_force, base, version)
    for (section, key), message in errors.items():
        form[field_name(section, key)].errors = [current().reason(message)]
    return render_template("admin/settings.html", form=form, lists=lists,
                           sections=_sections(form, lists, in_force, base, errors),
                           errors=errors, previewing=previewing,
                           **_history(in_force.bridge.timezone, lists)), status


def _sections(form: FlaskForm, lists: WhmcsLists, in_force: Settings, base: Settings,
              errors: dict[tuple[str, str], str]) -> list[tuple[str, str, list[Row]]]:
    saved = overrides.saved_values(rt().store)
    rows: dict[str, list[Row]] = {section: [] for section in overrides.EDITABLE_SECTIONS}
    for section, key in overrides.editable_keys():
        made = form[field_name(section, key)]
        kind = overrides.key_info(section, key).kind
        configured = overrides.text_of(base, section, key)
        overridden = ((section, key) in saved
                      and overrides.text_of(in_force, section, key) != configured)
        note = ""
        if key == "vip_group_id" and lists.groups is not None:
            exempt = [f"{g.name} (#{g.id})" for g in lists.groups if g.susptermexempt]
            note = (_("Exempt from suspension in WHMCS: %(groups)s", groups=", ".join(exempt))
                    if exempt else _("No WHMCS group is exempt from suspension."))
        preview = None
        if key in MESSAGE_LANGUAGES and (section, key) not in errors:
            language = MESSAGE_LANGUAGES[key]
            template = overrides.parse(section, key, made.data or "") if made.data else ""
            preview = render_block_message(template, sample_client(language), language,
                                           in_force.whmcs.url) if template else None
        rows[section].append(Row(section, key, field_name(section, key),
                                 _(declared(section, key).help), made, kind, overridden,
                                 describe(section, key, configured, lists), note, preview))
    return [(section, _(SECTION_TITLES[section]), rows[section]) for section in rows]


def _history(zone: str, lists: WhmcsLists) -> dict[str, Any]:
    store = rt().store
    page = page_from_request(overrides.history_count(store), HISTORY_PAGE_SIZE)
    changes = [{"at": local_time(c.at, zone), "actor": c.actor,
                "setting": f"[{c.section}] {c.key}",
                "old": shorten(describe(c.section, c.key, c.old or "", lists), 120),
                "new": shorten(describe(c.section, c.key, c.new or "", lists), 120)}
               for c in overrides.history(store, limit=page.size, offset=page.offset)]
    return {"history": changes, "page": page, "zone": zone}


def reset(name: str, base: Settings) -> Response:
    """Back to the configured value for one key (the rest of the form is not saved)."""
    found = [(s, k) for s, k in overrides.editable_keys() if field_name(s, k) == name]
    if not found:
        abort(400, description=_("There is no setting %(name)s to reset.", name=repr(name)))
    section, key = found[0]
    changes, errors = overrides.save(rt().store, base,
                                     {(section, key): overrides.text_of(base, section, key)},
                                     actor=admin_name(), now=business_now())
    assert not errors, errors  # the configured value passed the same checks at start-up
    return finish(changes, [])


def finish(changes: list[overrides.SettingChange], kept: list[tuple[str, str]]) -> Response:
    """Audit each change, put it in force in this process now, say what changed."""
    for change in changes:
        audit("setting", before=change.old, after=change.new,
              reasons=(f"[{change.section}] {change.key}",))
        log.info("admin %s changed setting [%s] %s", change.actor, change.section, change.key)
    rt().live.reload()  # this process at once; the others within their LiveSettings ttl
    if changes:
        flash(_("Saved: %(changes)s.", changes="; ".join(
            f"[{c.section}] {c.key} {shorten(c.old)} → {shorten(c.new)}" for c in changes)),
              "ok")
    else:
        flash(_("Nothing changed: the values sent are the ones in force."))
    if kept:
        flash(_("Kept the newer value someone else saved meanwhile for %(keys)s.",
                keys=", ".join(f"[{s}] {k}" for s, k in kept)), "warning")
    return redirect(url_for("admin.settings"))

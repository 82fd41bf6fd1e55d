"""vipgate's languages: Portuguese (Brazil) and English, from gettext catalogs, with money and
dates formatted by Babel for the locale.

The messages in the code are English (the msgids); ``bridge/translations/`` holds the catalog
template (``messages.pot``) and one ``messages.po`` per language (``make translations``
extracts and updates them). The build compiles each ``.po`` into a ``.mo`` inside the wheel
(``setup.py``); in a source tree, where no ``.mo`` is kept, the ``.po`` is compiled in memory
the first time a language is used, so the tree stays clean and never runs stale catalogs.

Which language a reader gets is decided by the caller: the admin page follows the signed-in
account's choice, else ``[bridge] language``; the panels inside WHMCS follow the WHMCS page or
client (``bridge.panels``). Pure apart from reading the package's own catalogs (no database,
no web framework): the policy formats its money and dates with it."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_compact_decimal, format_decimal
from babel.support import Translations

from bridge.model import DepartmentRef, GroupRef, Money, Priority, Reason, ReasonValue, WhmcsNames

LANGUAGES = ("pt_BR", "en")
LANGUAGE_NAMES = {"pt_BR": "Português (Brasil)", "en": "English"}
CATALOGS = Path(__file__).resolve().parent / "translations"
DOMAIN = "messages"
# Babel's "short" date in pt_BR is 03/12/2026; its "short" in en (12/3/26) reads as the 12th
# of March to a Brazilian, so English dates are ISO (2026-12-03), as vipgate always wrote them.
DATE_FORMATS = {"pt_BR": "short", "en": "yyyy-MM-dd"}
MONTH_FORMATS = {"pt_BR": "MM/yyyy", "en": "yyyy-MM"}  # a month alone: 11/2026, 2026-11
TIME_FORMAT = "HH:mm"  # 24 hours in both, as WHMCS's own admin area
MONEY_PATTERN = "#,##0.00"  # two decimals, the locale's group and decimal signs


def N_(message: str) -> str:  # gettext's name for "mark now, translate where shown"
    """Marks ``message`` for the catalogs where it is defined; translated where it is shown."""
    return message


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: expected one of "
                         f"{', '.join(LANGUAGES)}")
    return language


@cache
def translations(language: str) -> Translations:
    """The compiled catalog of ``language`` (``pt_BR`` or ``en``)."""
    folder = CATALOGS / check_language(language) / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as compiled:
            return Translations(compiled, DOMAIN)
    with po.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled_in_memory = io.BytesIO()
    write_mo(compiled_in_memory, catalog)
    compiled_in_memory.seek(0)
    return Translations(compiled_in_memory, DOMAIN)


def translate(language: str, message: str, **values: object) -> str:
    text = translations(language).ugettext(message)
    return text % values if values else text


def translate_plural(language: str, singular: str, plural: str, n: int,
                     **values: object) -> str:
    """``%(num)d`` in the messages is ``n`` (as Flask-Babel's ngettext)."""
    text = translations(language).ungettext(singular, plural, n)
    return text % {"num": n, **values}


def format_money(amount: Decimal | int | float, prefix: str, suffix: str,
                 language: str) -> str:
    """An amount in the client's WHMCS currency, as WHMCS shows it (its prefix and suffix,
    ``R$ `` / `` BRL``), the digits in the reader's locale: ``R$ 1.234,56`` in pt_BR,
    ``R$ 1,234.56`` in English. vipgate never converts currencies."""
    value = Decimal(str(amount))
    if check_language(language) == "en":  # Babel's digits for en, without its pattern machinery
        digits = f"{value:,.2f}"  # (the policy writes every reason in English: a resync's cost)
    else:
        digits = format_decimal(value, format=MONEY_PATTERN, locale=language)
    return f"{prefix}{digits}{suffix}".strip()


def format_day(day: date | datetime | str, language: str) -> str:
    """``03/12/2026`` in pt_BR, ``2026-12-03`` in English (an ISO string is read as a day)."""
    value = date.fromisoformat(day[:10]) if isinstance(day, str) else day
    if isinstance(value, datetime):
        value = value.date()
    if DATE_FORMATS[check_language(language)] == "yyyy-MM-dd":
        return value.isoformat()  # the same, without Babel's pattern machinery
    return format_date(value, DATE_FORMATS[language], locale=language)


def format_month(month: str, language: str) -> str:
    """A month given as ``YYYY-MM``: ``11/2026`` in pt_BR, ``2026-11`` in English."""
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise ValueError(f"not a month (YYYY-MM): {month!r}") from None
    if MONTH_FORMATS[check_language(language)] == "yyyy-MM":
        return first.isoformat()[:7]
    return format_date(first, MONTH_FORMATS[language], locale=language)


def format_moment(moment: datetime, language: str) -> str:
    """A day and time of day: ``03/12/2026 14:05`` / ``2026-12-03 14:05``."""
    return f"{format_day(moment, language)} {format_time(moment, TIME_FORMAT, locale=language)}"


def _reason_value(value: ReasonValue, language: str, names: WhmcsNames | None) -> object:
    if isinstance(value, (Reason, tuple)):
        reasons = value if isinstance(value, tuple) else (value,)
        if language == "en" and names is None:  # their English text, already made
            return "; ".join(reasons)
        return "; ".join(render_reason(r, language, names) for r in reasons)
    if isinstance(value, Money):
        return format_money(value.amount, value.prefix, value.suffix, language)
    if isinstance(value, Priority):  # WHMCS's priorities, as the panels name them
        return translations(language).upgettext("ticket priority", value.name)
    if isinstance(value, GroupRef):  # the bare id where no names are given (the English text)
        return str(value.id) if names is None else names.group(value.id)
    if isinstance(value, DepartmentRef):  # the same for a support department
        return str(value.id) if names is None else names.department(value.id)
    if isinstance(value, datetime):
        return f"{format_moment(value.astimezone(UTC), language)} UTC"
    if isinstance(value, date):
        return format_day(value, language)
    return value


def _render(msgid: str, plural: str | None, values: Mapping[str, ReasonValue], language: str,
            names: WhmcsNames | None) -> str:
    catalog = translations(check_language(language))
    if plural is None:
        text = catalog.ugettext(msgid)
    else:
        count = values["num"]
        if not isinstance(count, int):
            raise TypeError(f"{msgid!r}: num must be a count, not {count!r}")
        text = catalog.ungettext(msgid, plural, count)
    shown = {k: _reason_value(v, language, names) for k, v in values.items()}
    return text % shown if values else text


def render_reason(reason: str, language: str, names: WhmcsNames | None = None) -> str:
    """``reason`` in ``language``, groups and departments by their WHMCS names when ``names``
    is given; a plain string (English text stored before reasons were kept as messages) as it
    is."""
    if not isinstance(reason, Reason):
        return reason
    try:
        return _render(reason.msgid, reason.plural, reason.values, language, names)
    except (KeyError, TypeError, ValueError):  # values that do not fit their message (a row
        return str(reason)  # edited by hand, a translation gone wrong): its English text


class ReasonMaker:
    """Makes the policy's reasons (``bridge.model.Reason``): ``why.gettext("...", name=value)``
    and ``why.ngettext(singular, plural, n, ...)``, named as gettext's calls so that ``make
    translations`` extracts their messages; translated where they are shown."""

    def gettext(self, msgid: str, **values: ReasonValue) -> Reason:
        return Reason(_render(msgid, None, values, "en", None), msgid, values)

    def ngettext(self, singular: str, plural: str, n: int, **values: ReasonValue) -> Reason:
        values = {"num": n, **values}
        return Reason(_render(singular, plural, values, "en", None), singular, values, plural)


why = ReasonMaker()


# What the audit log's actions (``audit.action``) and the membership flags they change are
# called for people: the panels' list of last changes, the admin's audit log and client
# history. An action not listed here is shown as it is stored.
AUDIT_ACTIONS = {
    "group": N_("VIP group"), "membership": N_("VIP membership"),
    "ticket_priority": N_("ticket priority"), "ticket_note": N_("note on ticket"),
    "ticket_department": N_("ticket moved"), "ticket_reply": N_("reply on ticket"),
    "promise": N_("promise to pay"), "promise_cancel": N_("promise cancelled"),
    "reconcile": N_("reconciled"), "setting": N_("setting changed"),
    "snapshot": N_("snapshot taken"), "admin_login": N_("admin signed in"),
    "inbox_retry": N_("event retried"), "inbox_discard": N_("event discarded"),
    "first_reconcile_confirmed": N_("first full reconcile confirmed"),
    "episode_reason": N_("episode reason tagged"),
    "trust_unlock": N_("unlocked by trust"), "trust_unlock_end": N_("trust unlock ended"),
    "pin": N_("Pin"), "unpin": N_("Unpin"), "exclude": N_("Exclude"), "include": N_("Include"),
}
# Why a client stopped paying, as staff tag a delinquency episode (issue 19 item 3; the keys
# are what ``episode.reason`` holds, ``bridge.policy.episodes.check_reason`` checks them).
# What a delinquency episode's actions (``episode_action.kind``) are called for people: the
# client page's episodes, the recovery figures' "first action".
EPISODE_ACTIONS = {
    "left_vip": N_("left VIP"), "ticket_lowered": N_("ticket priority lowered"),
    "ticket_blocked": N_("ticket blocked"), "suspended": N_("suspended by WHMCS"),
    "promise": N_("promise to pay"), "unlocked_by_trust": N_("unlocked by trust"),
    "reason_tagged": N_("reason tagged"),
}
EPISODE_REASONS = {
    "boleto": N_("forgot or lost the boleto"),
    "financial": N_("financial trouble"),
    "service": N_("unhappy with the service or support"),
    "dispute": N_("dispute"),
    "other": N_("other"),
}
# A client's status in WHMCS (``tblclients.status``; bridge.payloads.CLIENT_STATUSES).
CLIENT_STATUSES = {"Active": N_("Active"), "Inactive": N_("Inactive"), "Closed": N_("Closed")}
# An inbox event's state inside a sentence or an audit value (``inbox.state``): the inbox page
# and the audit entries of a retry or a discard.
INBOX_STATES = {"queued": N_("queued"), "retrying": N_("retrying"), "dead": N_("dead"),
                "processing": N_("processing"), "done": N_("done"),
                "discarded": N_("discarded"), "gone": N_("gone")}
# An inbox retry's ``before``: the state the admin saw and the attempts made so far, as
# ``bridge.admin.inbox`` stores it (``dead, 3 attempts``; language-neutral data, read here).
INBOX_RETRY_BEFORE = re.compile(r"(?P<state>\w+), (?P<attempts>\d+) attempts?")
# What a discard puts before an inbox event's last error (``bridge.admin.inbox``, stored by
# ``bridge.store.inbox.discard``): read here to be shown in the reader's language.
DISCARD_NOTE = re.compile(r"discarded by (?P<admin>.+?): (?P<reason>.*?)"
                          r"(?:\nlast error: (?P<error>.*))?", re.S)
# The parts of a reconcile's ``after`` (``Reconciled.summary``: the ``Change.summary`` of each
# change WHMCS took, joined by "; "), or ``nothing to change``, or ``failed: <WHMCS's error>``.
RECONCILE_GROUP = re.compile(r"group (?P<before>\d+) -> (?P<after>\d+)")
RECONCILE_PRIORITY = re.compile(r"ticket #(?P<ticket>\d+) priority (?P<before>\w+) -> "
                                r"(?P<after>\w+)")
RECONCILE_NOTE = re.compile(r"ticket #(?P<ticket>\d+) staff note")
# the admin's pin/unpin/exclude/include change the same flags as staff's membership entries
MEMBERSHIP_ACTIONS = ("membership", "pin", "unpin", "exclude", "include")
MEMBERSHIP_WORDS = {"pinned": N_("pinned"), "excluded": N_("excluded"), "held": N_("held"),
                    "rules": N_("by the rules"), "unknown": N_("unknown")}


class Texts:
    """One language's messages and formats, for templates and the code that fills them."""

    def __init__(self, language: str) -> None:
        self.language = check_language(language)

    def gettext(self, message: str, **values: object) -> str:
        return translate(self.language, message, **values)

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        return translate_plural(self.language, singular, plural, n, **values)

    def pgettext(self, context: str, message: str, **values: object) -> str:
        """``message`` as meant in ``context`` (one English word, two meanings)."""
        text = translations(self.language).upgettext(context, message)
        return text % values if values else text

    def money(self, amount: Decimal | int | float, prefix: str, suffix: str) -> str:
        return format_money(amount, prefix, suffix, self.language)

    def number(self, value: int | float | Decimal, digits: int = 0) -> str:
        """``12.345`` / ``12,345``; ``digits`` after the decimal sign (``12,5`` / ``12.5``)."""
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(Decimal(str(value)), format=pattern, locale=self.language)

    def plain(self, value: int | float | Decimal) -> str:
        """A whole number as :meth:`number` writes it, another with two decimals (a chart's
        value: ``1.234`` / ``1,234``, ``12,50`` / ``12.50``)."""
        return self.number(value, 0 if float(value).is_integer() else 2)

    def compact(self, value: int | float | Decimal) -> str:
        """A chart's axis tick: ``1,5 mil`` / ``1.5K``, ``2,5 mi`` / ``2.5M`` from a thousand
        (Babel's short form, one decimal at most), else :meth:`plain`."""
        amount = Decimal(str(value))
        if abs(amount) < 1000:
            return self.plain(value)
        return format_compact_decimal(amount, locale=self.language, fraction_digits=1)

    def day(self, day: date | datetime | str) -> str:
        return format_day(day, self.language)

    def moment(self, moment: datetime) -> str:
        return format_moment(moment, self.language)

    def month(self, month: str) -> str:
        """A ``YYYY-MM`` month (``format_month``)."""
        return format_month(month, self.language)

    def client_status(self, status: str) -> str:
        """A client's status in WHMCS (``CLIENT_STATUSES``) for people, else as WHMCS gave
        it."""
        name = CLIENT_STATUSES.get(status)
        return self.gettext(name) if name else status

    def reason(self, reason: str, names: WhmcsNames | None = None) -> str:
        """A decision's reason in this language (``render_reason``)."""
        return render_reason(reason, self.language, names)

    def priority(self, priority: str) -> str:
        """One of WHMCS's ticket priorities as the panels name it; another value as it is."""
        names = {"Low": self.pgettext("ticket priority", "Low"),  # literal: extracted
                 "Medium": self.pgettext("ticket priority", "Medium"),
                 "High": self.pgettext("ticket priority", "High")}
        return names.get(priority, priority)

    def episode_action(self, kind: str) -> str:
        """A delinquency episode's action (``EPISODE_ACTIONS``) for people, else as stored."""
        name = EPISODE_ACTIONS.get(kind)
        return self.gettext(name) if name else kind

    def episode_reason(self, reason: str) -> str:
        """A delinquency episode's reason tag (``EPISODE_REASONS``) for people, else as
        stored."""
        name = EPISODE_REASONS.get(reason)
        return self.gettext(name) if name else reason

    def audit_action(self, action: str) -> str:
        """An audit entry's action for people (``AUDIT_ACTIONS``), else as stored."""
        name = AUDIT_ACTIONS.get(action)
        return self.gettext(name) if name else action.replace("_", " ")

    def audit_value(self, action: str, value: str | None,
                    names: WhmcsNames | None = None) -> str | None:
        """An audit entry's ``before`` or ``after`` in this language: priorities, membership
        flags, episode reasons, inbox states and a reconcile's changes translated, a promise's
        ``until 2026-11-28`` and a snapshot's day in the locale, group and department ids with
        their names; anything else as stored."""
        if value is None:
            return None
        if action == "ticket_priority":
            return self.priority(value)
        if action in MEMBERSHIP_ACTIONS:
            return "+".join(self.gettext(MEMBERSHIP_WORDS[w]) if w in MEMBERSHIP_WORDS else w
                            for w in value.split("+"))
        if action == "episode_reason":
            return self.episode_reason(value)
        if action in ("inbox_retry", "inbox_discard"):
            return self.inbox_value(value)
        if action == "reconcile":
            return self.reconcile_value(value, names)
        if action == "snapshot":
            try:
                return self.day(date.fromisoformat(value))
            except ValueError:
                return value
        if action in ("promise", "promise_cancel") and value.startswith("until "):
            try:
                day = date.fromisoformat(value.removeprefix("until "))
            except ValueError:
                return value
            return self.gettext("until %(day)s", day=self.day(day))
        return (names or WhmcsNames()).audit_value(action, value)

    def inbox_state(self, state: str) -> str:
        """An inbox event's state (``INBOX_STATES``) inside a sentence, else as stored."""
        name = INBOX_STATES.get(state)
        return self.gettext(name) if name else state

    def inbox_value(self, value: str) -> str:
        """An inbox retry's or discard's ``before``/``after``: ``queued``, or ``dead, 3
        attempts`` (the state the admin saw and the attempts so far), with a plural."""
        retried = INBOX_RETRY_BEFORE.fullmatch(value)
        if retried is None:
            return self.inbox_state(value)
        return self.gettext("%(state)s, %(attempts)s", state=self.inbox_state(
            retried["state"]), attempts=self.ngettext("%(num)d attempt", "%(num)d attempts",
                                                     int(retried["attempts"])))

    def inbox_error(self, text: str) -> str:
        """An inbox event's last error: a discard's note (``discarded by alice: reason``, then
        the error before it) in this language; the worker's error as it was written."""
        found = DISCARD_NOTE.fullmatch(text)
        if found is None:
            return text
        note = self.gettext("discarded by %(admin)s: %(reason)s", admin=found["admin"],
                            reason=found["reason"])
        if found["error"] is None:
            return note
        return note + "\n" + self.gettext("last error: %(error)s", error=found["error"])

    def reconcile_value(self, value: str, names: WhmcsNames | None = None) -> str:
        """A reconcile's ``after`` (``bridge.admin.membership.Reconciled.summary``): each
        change as the reasons name it (groups by name), ``nothing to change``, or ``failed:``
        with WHMCS's error as it came; a part of another form as stored."""
        if value == "nothing to change":
            return self.gettext("nothing to change")
        if value.startswith("failed: "):
            return self.gettext("failed: %(error)s", error=value.removeprefix("failed: "))
        return "; ".join(self._reconcile_part(part, names) for part in value.split("; "))

    def _reconcile_part(self, part: str, names: WhmcsNames | None) -> str:
        found = RECONCILE_GROUP.fullmatch(part)
        if found:  # the messages of bridge.engine.plan.Change.summary
            return self.reason(why.gettext("group %(before)s -> %(after)s",
                                           before=GroupRef(int(found["before"])),
                                           after=GroupRef(int(found["after"]))),
                               names or WhmcsNames())
        found = RECONCILE_PRIORITY.fullmatch(part)
        if found:
            return self.reason(why.gettext("ticket #%(ticket)s priority %(before)s -> %(after)s",
                                           ticket=int(found["ticket"]),
                                           before=Priority(found["before"]),
                                           after=Priority(found["after"])))
        found = RECONCILE_NOTE.fullmatch(part)
        if found:
            return self.reason(why.gettext("ticket #%(ticket)s staff note",
                                           ticket=int(found["ticket"])))
        return part

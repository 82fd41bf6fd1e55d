"""Settings: one INI file plus ``VIPGATE_<SECTION>_<KEY>`` overrides, validated once.

Everything else in vipgate receives the frozen :class:`Settings` built here. A bad value stops
start-up with :class:`ConfigError`, whose message is one line naming the section, the key, the
value and the form that was expected.

Each key is declared once, as a field of its section's dataclass made by :func:`setting`: the
parser (a marshmallow field that validates the text and says what is expected), the default,
whether it is secret, and the label and help the admin page shows. The section schemas in
:data:`SECTIONS` are generated from those fields; ``tests/test_settings.py`` checks
``config.example.ini`` against them.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast

from marshmallow import Schema, ValidationError, post_load
from marshmallow import fields as mf

from bridge.i18n import N_, why
from bridge.model import TICKET_PRIORITIES

DEFAULT_CONFIG_PATH = "vipgate.ini"
DEFAULT_DATABASE_URL = "sqlite:///vipgate.db"
ENV_PREFIX = "VIPGATE_"


class ConfigError(Exception):
    """A setting is missing, unknown or malformed; the message is meant for the operator.

    ``reason`` is the message with its values (a :class:`bridge.model.Reason`, or a plain
    string), which the CLI shows in its reader's language; ``str()`` is its English text."""

    def __init__(self, reason: str) -> None:
        super().__init__(str(reason))
        self.reason = reason


# --- value parsers: each raises ValidationError("expected ...") -----------------------------
# Their messages are ``bridge.model.Reason``s: English in a config error (the operator's CLI),
# in the reader's language on the admin page's settings form (``bridge.overrides.parse``).


class _Text(mf.String):
    def __init__(self, default: str = "", **kw: Any) -> None:
        super().__init__(load_default=default, **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        return str(value).strip()


class _Int(mf.Field):
    def __init__(self, default: int, lo: int, hi: int, **kw: Any) -> None:
        super().__init__(load_default=default, **kw)
        self.lo, self.hi = lo, hi

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> int:
        text = str(value).strip()
        try:
            number = int(text, 10)
        except ValueError:
            number = None
        if number is None or not self.lo <= number <= self.hi:
            raise ValidationError(why.gettext("expected a whole number from %(lo)s to %(hi)s",
                                              lo=self.lo, hi=self.hi))
        return number


class _Float(mf.Field):
    def __init__(self, default: float, lo: float, hi: float, unit: str = N_("seconds"),
                 **kw: Any) -> None:
        super().__init__(load_default=default, **kw)
        self.lo, self.hi, self.unit = lo, hi, unit

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> float:
        try:
            number = float(str(value).strip())
        except ValueError:
            number = float("nan")
        if not self.lo <= number <= self.hi:
            raise ValidationError(why.gettext(
                "expected a number of %(unit)s from %(lo)s to %(hi)s",
                unit=why.gettext(self.unit), lo=f"{self.lo:g}", hi=f"{self.hi:g}"))
        return number


class _Money(mf.Field):
    def __init__(self, default: str = "0", **kw: Any) -> None:
        super().__init__(load_default=Decimal(default), **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Decimal:
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0 or amount > Decimal(10**12):
            raise ValidationError(why.gettext(
                "expected an amount of money like 10 or 89.90, not negative"))
        return amount.quantize(Decimal("0.01"))


_TRUE = {"1", "on", "yes", "true"}
_FALSE = {"0", "off", "no", "false", ""}


class _Bool(mf.Field):
    def __init__(self, default: bool, **kw: Any) -> None:
        super().__init__(load_default=default, **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> bool:
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError(why.gettext("expected on or off"))


class _Choice(mf.Field):
    def __init__(self, default: str, choices: tuple[str, ...], **kw: Any) -> None:
        super().__init__(load_default=default, **kw)
        self.choices = choices

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        text = str(value).strip()
        for choice in self.choices:
            if text.lower() == choice.lower():
                return choice
        raise ValidationError(why.gettext("expected one of %(choices)s",
                                          choices=", ".join(self.choices)))


class _IdList(mf.Field):
    def __init__(self, **kw: Any) -> None:
        super().__init__(load_default=(), **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> tuple[int, ...]:
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
        if not all(p.isdigit() and 0 < int(p) < 2**32 for p in parts):
            raise ValidationError(why.gettext("expected comma-separated WHMCS ids like 1, 4"))
        return tuple(sorted({int(p) for p in parts}))


# Placeholders the client-facing block message may use (bridge.policy.gate fills them).
TEMPLATE_FIELDS = ("invoices", "total", "days", "link")
DEFAULT_BLOCK_MESSAGES = {
    "pt_BR": ("Sua conta tem faturas vencidas ({invoices}; total {total}). Enquanto não forem "
              "pagas, só é possível abrir chamados no departamento financeiro. Pague em: {link}"),
    "en": ("Your account has overdue invoices ({invoices}; total {total}). Until they are paid, "
           "tickets can only be opened in the billing department. Pay here: {link}"),
}


class _Template(mf.Field):
    """A message with ``{placeholder}`` fields from :data:`TEMPLATE_FIELDS`."""

    def __init__(self, default: str, **kw: Any) -> None:
        super().__init__(load_default=default, **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        import string

        text = " ".join(str(value).split())
        allowed = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
        if not text or len(text) > 1000:
            raise ValidationError(why.gettext(
                "expected a message of 1 to 1000 characters; it may use %(allowed)s",
                allowed=allowed))
        try:
            used = [name for _, name, spec, conv in string.Formatter().parse(text)
                    if name is not None]
        except ValueError:
            raise ValidationError(why.gettext(
                "expected { and } only around a placeholder (%(allowed)s); write {{ or }} for "
                "a literal brace", allowed=allowed)) from None
        unknown = sorted({n for n in used if n not in TEMPLATE_FIELDS})
        if unknown:
            raise ValidationError(why.gettext("unknown placeholder %(name)s; expected "
                                              "%(allowed)s", name="{" + unknown[0] + "}",
                                              allowed=allowed))
        return text


class _Url(mf.Field):
    def __init__(self, schemes: tuple[str, ...] = ("http", "https"), **kw: Any) -> None:
        super().__init__(load_default="", **kw)
        self.schemes = schemes

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        text = str(value).strip()
        if text and not any(text.startswith(f"{s}://") and len(text) > len(s) + 3
                            for s in self.schemes):
            raise ValidationError(why.gettext("expected an URL starting with %(schemes)s",
                                              schemes=" or ".join(f"{s}://"
                                                                  for s in self.schemes)))
        return text.rstrip("/")


class _DbUrl(mf.Field):
    def __init__(self, default: str, **kw: Any) -> None:
        super().__init__(load_default=default, **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        text = str(value).strip()
        if text and not (text.startswith("sqlite:///") or text.startswith("mysql+pymysql://")):
            raise ValidationError(why.gettext(
                "expected sqlite:///PATH or mysql+pymysql://USER:PASSWORD@HOST:PORT/DATABASE"))
        return text


class _Timezone(mf.Field):
    def __init__(self, **kw: Any) -> None:
        super().__init__(load_default="UTC", **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        text = str(value).strip()
        try:
            zoneinfo.ZoneInfo(text)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValidationError(why.gettext(
                "expected an IANA time zone like America/Sao_Paulo or UTC")) from None
        return text


def shown_url(url: str) -> str:
    """A database URL fit to print: the password hidden."""
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)


def check_webhook_secret(secret: str) -> bytes:
    """Return the HMAC key of a ``whsec_`` secret, or raise ValueError saying what is wrong."""
    if not secret.startswith("whsec_"):
        raise ValueError("expected whsec_ followed by base64 of 24 to 64 random bytes")
    try:
        key = base64.b64decode(secret[len("whsec_"):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("expected whsec_ followed by base64 of 24 to 64 random bytes") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("expected whsec_ followed by base64 of 24 to 64 random bytes")
    return key


class _Secrets(mf.Field):
    def __init__(self, **kw: Any) -> None:
        super().__init__(load_default=(), **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> tuple[str, ...]:
        secrets = tuple(s.strip() for s in str(value).split(",") if s.strip())
        for secret in secrets:
            try:
                check_webhook_secret(secret)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None
        return secrets


# --- sections: each key declared once ------------------------------------------------------


def setting(parser: mf.Field, *, label: str = "", help: str = "", secret: bool = False) -> Any:
    """Declare one key: a dataclass field whose default is ``parser``'s ``load_default``,
    carrying ``parser`` (which validates the file's text and says what is expected), the label
    and one-line help the admin page shows (marked with ``N_`` for the catalogs, translated
    where shown), and ``secret`` (the value never appears in a repr
    or an error message). The section schemas are generated from these fields."""
    return field(default=parser.load_default, repr=not secret,
                 metadata={"parser": parser, "label": label, "help": help, "secret": secret})


@dataclass(frozen=True)
class BridgeSettings:
    database_url: str = setting(_DbUrl(DEFAULT_DATABASE_URL), secret=True)  # may hold a password
    public_url: str = setting(_Url())
    timezone: str = setting(_Timezone())
    language: str = setting(_Choice("pt_BR", ("pt_BR", "en")))
    run_worker: bool = setting(_Bool(True))
    precron_wait_seconds: int = setting(_Int(100, 1, 115))
    # reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are trusted (web.app)
    proxy_count: int = setting(_Int(0, 0, 5))


@dataclass(frozen=True)
class WebhookSettings:
    secrets: tuple[str, ...] = setting(_Secrets(), secret=True)
    tolerance_seconds: int = setting(_Int(300, 30, 3600))
    max_body_bytes: int = setting(_Int(65536, 1024, 1048576))
    # POST /hooks/whmcs/batch (up to 500 events in one body)
    max_batch_bytes: int = setting(_Int(4194304, 1024, 33554432))


@dataclass(frozen=True)
class WhmcsSettings:
    url: str = setting(_Url())
    identifier: str = setting(_Text())
    secret: str = setting(_Text(), secret=True)
    accesskey: str = setting(_Text(), secret=True)
    timeout_seconds: float = setting(_Float(10.0, 1.0, 120.0))
    database_url: str = setting(_DbUrl(""), secret=True)


@dataclass(frozen=True)
class PolicySettings:
    vip_group_id: int = setting(
        _Int(0, 0, 2**32 - 1), label=N_("VIP client group"),
        help=N_("The client group vipgate manages; none = no VIP group yet."))
    default_group_id: int = setting(
        _Int(0, 0, 2**32 - 1), label=N_("Default group"),
        help=N_("Group a client returns to when it leaves VIP and had none before."))
    grace_days: int = setting(
        _Int(3, 0, 365), label=N_("Grace days"),
        help=N_("Days an unpaid invoice may be overdue before its client counts as overdue."))
    grace_in_business_days: bool = setting(
        _Bool(False), label=N_("Grace in business days"),
        help=N_("Count grace in business days (Mon-Fri), e.g. for boletos paid on a weekend."))
    pending_grace_days: int = setting(
        _Int(2, 0, 60), label=N_("Payment Pending grace days"),
        help=N_("Extra days for invoices in \"Payment Pending\" (bank clearing)."))
    collections_owed: bool = setting(
        _Bool(True), label=N_("Collections is owed"),
        help=N_("Invoices in \"Collections\" are owed from their due date like Unpaid ones (off: "
                "ignored)."))
    min_overdue_amount: Decimal = setting(
        _Money("0"), label=N_("Minimum overdue amount"),
        help=N_("Overdue balances below this amount are ignored."))
    min_tenure_months: int = setting(
        _Int(12, 0, 600), label=N_("Minimum tenure (months)"),
        help=N_("VIP eligibility by rule: account age in months."))
    late_tolerance_days: int = setting(
        _Int(5, 0, 365), label=N_("Late payment tolerance (days)"),
        help=N_("VIP eligibility: no invoice paid more than this many days late within the "
                "lookback."))
    lookback_months: int = setting(
        _Int(12, 1, 120), label=N_("Lookback (months)"),
        help=N_("VIP eligibility: the months looked back at for late payments and spend."))
    min_spend: Decimal = setting(
        _Money("0"), label=N_("Minimum spend"),
        help=N_("VIP eligibility: at least this much paid within the lookback."))
    promote_by_rules: bool = setting(
        _Bool(False), label=N_("Promote by rules"),
        help=N_("Move clients into VIP by the rules below (tenure, payment history, spend); off = "
                "VIP is whoever staff put there."))
    promise_restores_vip: bool = setting(
        _Bool(False), label=N_("Promise restores VIP"),
        help=N_("A staff-registered promise to pay also restores VIP (otherwise only payment "
                "does)."))
    follow_staff_changes: bool = setting(
        _Bool(True), label=N_("Follow staff changes"),
        help=N_("Follow group changes made by staff (pin when moved into VIP, unpin when moved "
                "out)."))


@dataclass(frozen=True)
class AdminSettings:
    secret_key: str = setting(_Text(), secret=True)
    secure_cookies: bool = setting(_Bool(True))
    login_attempts: int = setting(_Int(5, 1, 100))
    lockout_minutes: int = setting(_Int(15, 1, 1440))


UNGATED_TICKETS = ("move_and_reply", "reply", "keep")


@dataclass(frozen=True)
class TicketSettings:
    billing_departments: tuple[int, ...] = setting(
        _IdList(), label=N_("Billing departments"),
        help=N_("Departments where clients may always open tickets, e.g. billing."))
    priority_vip: str = setting(
        _Choice("High", (*TICKET_PRIORITIES, "keep")), label=N_("Priority: VIP clients"),
        help=N_("Ticket priority of VIP clients in good standing; keep = leave what the client "
                "chose."))
    priority_current: str = setting(
        _Choice("keep", (*TICKET_PRIORITIES, "keep")),
        label=N_("Priority: clients in good standing"),
        help=N_("Ticket priority of current clients; keep = leave what the client chose."))
    priority_overdue: str = setting(
        _Choice("Low", (*TICKET_PRIORITIES, "keep")), label=N_("Priority: overdue clients"),
        help=N_("Ticket priority of overdue clients; keep = leave what the client chose."))
    priority_suspended: str = setting(
        _Choice("Low", (*TICKET_PRIORITIES, "keep")), label=N_("Priority: suspended clients"),
        help=N_("Ticket priority of suspended clients; keep = leave what the client chose."))
    block_when: str = setting(
        _Choice("suspended", ("suspended", "overdue", "never")), label=N_("Block new tickets"),
        help=N_("Block new tickets outside billing departments: suspended, overdue or never."))
    block_after_days: int = setting(
        _Int(0, 0, 365), label=N_("Block after (days)"),
        help=N_("Block only after this many days overdue (0 = at once; with suspended it also "
                "blocks overdue clients past this many days when set)."))
    staff_note: bool = setting(
        _Bool(True), label=N_("Staff note"),
        help=N_("Add a staff note listing overdue invoices to tickets of overdue/suspended "
                "clients."))
    fail_open: bool = setting(
        _Bool(True), label=N_("Fail open"),
        help=N_("If the bridge does not answer in time, let the ticket through (on) or refuse it "
                "(off). Written into the PHP stub: run vipgate install-stub again after a change."))
    block_message_pt_br: str = setting(
        _Template(DEFAULT_BLOCK_MESSAGES["pt_BR"]), label=N_("Block message (Português)"),
        help=N_("What a blocked client is told in Portuguese. Placeholders: {invoices}, {total}, "
                "{days}, {link}; {{ or }} for a brace."))
    block_message_en: str = setting(
        _Template(DEFAULT_BLOCK_MESSAGES["en"]), label=N_("Block message (English)"),
        help=N_("What a blocked client is told in English. Placeholders: {invoices}, {total}, "
                "{days}, {link}; {{ or }} for a brace."))
    # A blocked client's ticket that never met the gate (e-mail piping, the API).
    ungated_tickets: str = setting(
        _Choice("move_and_reply", UNGATED_TICKETS), label=N_("Tickets that skip the gate"),
        help=N_("A blocked client's ticket that arrives outside billing without meeting the gate "
                "(e-mailed in): move_and_reply = move it to the first billing department and "
                "reply with the block message; reply = only reply; keep = leave it."))

    def block_message(self, language: str) -> str:
        return self.block_message_pt_br if language == "pt_BR" else self.block_message_en


@dataclass(frozen=True)
class PanelSettings:
    home_banner: bool = setting(
        _Bool(True), label=N_("Client-area banner"),
        help=N_("Show overdue clients a banner with what they owe and pay links on the "
                "client-area home."))
    admin_url: str = setting(
        _Url(), label=N_("Admin page address"),
        help=N_("Where staff's browsers reach vipgate's admin page, for the link on the client "
                "summary panel; empty = [bridge] public_url."))


@dataclass(frozen=True)
class TrustSettings:
    """The trust unlock (``bridge.policy.trust``): a suspended client unlocks its services
    itself from the client-area banner, once per delinquency episode."""

    enabled: bool = setting(
        _Bool(False), label=N_("Trust unlock"),
        help=N_("Let a client suspended for non-payment unlock its services itself, once per "
                "delinquency episode, from the client-area banner."))
    days: int = setting(
        _Int(3, 1, 30), label=N_("Days unlocked"),
        help=N_("How many days the services stay unlocked; unpaid by then, WHMCS's cron "
                "suspends them again."))
    max_per_year: int = setting(
        _Int(2, 1, 12), label=N_("Unlocks per year"),
        help=N_("At most this many trust unlocks per client in any 365 days."))


@dataclass(frozen=True)
class ResyncSettings:
    # auto (db when [whmcs] database_url is set, else api), db, api
    source: str = setting(_Choice("auto", ("auto", "db", "api")))
    concurrency: int = setting(_Int(4, 1, 32))  # clients applied at once
    processes: int = setting(_Int(2, 1, 16))  # processes a database scan of everyone is split over
    # WHMCS API writes per second, across the process
    rate_per_second: float = setting(_Float(10.0, 0.1, 1000.0, unit=N_("writes per second")))


class _Section(Schema):
    """A section's schema: loads the file's text of each key into the section's dataclass."""

    dataclass: type

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.dataclass(**data)


def _schema_of(section: type) -> type[_Section]:
    """The schema generated from a section's declarations, keys in the dataclass's order."""
    declared: dict[str, Any] = {f.name: f.metadata["parser"] for f in fields(section)}
    name = section.__name__.removesuffix("Settings") + "Section"
    return cast(type[_Section], type(name, (_Section,), {**declared, "dataclass": section}))


SECTIONS: dict[str, type[_Section]] = {name: _schema_of(section) for name, section in (
    ("bridge", BridgeSettings),
    ("webhook", WebhookSettings),
    ("whmcs", WhmcsSettings),
    ("policy", PolicySettings),
    ("admin", AdminSettings),
    ("tickets", TicketSettings),
    ("panels", PanelSettings),
    ("trust", TrustSettings),
    ("resync", ResyncSettings),
)}


@dataclass(frozen=True)
class Declared:
    """One key as declared: how its text is parsed, its default and the admin page's words."""

    section: str
    key: str
    parser: mf.Field
    default: Any
    label: str
    help: str
    secret: bool


_DECLARED = {(name, f.name): Declared(name, f.name, f.metadata["parser"], f.default,
                                      f.metadata["label"], f.metadata["help"],
                                      f.metadata["secret"])
             for name, schema in SECTIONS.items() for f in fields(schema.dataclass)}


def declared_keys() -> list[Declared]:
    """Every key, section by section, in the dataclasses' order."""
    return list(_DECLARED.values())


def declared(section: str, key: str) -> Declared:
    """The declaration of ``[section] key`` (KeyError when there is none)."""
    found = _DECLARED.get((section, key))
    if found is None:
        raise KeyError(f"[{section}] {key} is not a setting")
    return found


# Values never repeated in an error message (they may be secrets, or hold one).
SECRET_KEYS = frozenset(item for item, d in _DECLARED.items() if d.secret)


@dataclass(frozen=True)
class Settings:
    bridge: BridgeSettings
    webhook: WebhookSettings
    whmcs: WhmcsSettings
    policy: PolicySettings
    admin: AdminSettings
    tickets: TicketSettings
    panels: PanelSettings
    trust: TrustSettings
    resync: ResyncSettings
    source: str = "embedded defaults"

    def replace(self, **sections: Mapping[str, Any]) -> Settings:
        """A copy with some keys changed, validated like a file would be (used by tests)."""
        raw = {name: {f.name: _unparse(getattr(getattr(self, name), f.name))
                      for f in fields(getattr(self, name))} for name in SECTIONS}
        for name, values in sections.items():
            raw[name].update({k: _unparse(v) for k, v in values.items()})
        return _build(raw, {}, self.source)


def _unparse(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _build(raw: dict[str, dict[str, str]], origin: dict[tuple[str, str], str],
           source: str) -> Settings:
    built: dict[str, Any] = {}
    for name, schema in SECTIONS.items():
        values = raw.get(name, {})
        try:
            built[name] = schema().load(values)
        except ValidationError as exc:
            key, messages = next(iter(sorted(exc.messages_dict.items())))
            message = messages[0] if isinstance(messages, list) else str(messages)
            where = origin.get((name, key), source)
            shown = why.gettext("<hidden>") if (name, key) in SECRET_KEYS \
                else repr(values.get(key))
            raise ConfigError(why.gettext(
                "config error: [%(section)s] %(key)s = %(value)s (%(where)s): %(problem)s",
                section=name, key=key, value=shown, where=where, problem=message)) from None
    return Settings(**built, source=source)


def load_settings(path: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read the INI file (if any) and the environment overrides into one frozen object.

    ``path`` None means ``VIPGATE_CONFIG`` or ``./vipgate.ini``; a missing default file means
    embedded defaults, a missing file that was asked for by name is an error.
    """
    env = os.environ if environ is None else environ
    explicit = path is not None or bool(env.get("VIPGATE_CONFIG"))
    config_path = Path(path if path is not None else env.get("VIPGATE_CONFIG")
                       or DEFAULT_CONFIG_PATH)
    raw: dict[str, dict[str, str]] = {name: {} for name in SECTIONS}
    origin: dict[tuple[str, str], str] = {}
    source = "embedded defaults"
    if config_path.is_file():
        source = str(config_path)
        parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
        try:
            parser.read(config_path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError) as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(why.gettext(
                "config error: %(path)s is not a valid INI file: %(problem)s",
                path=str(config_path), problem=first)) from None
        for section in parser.sections():
            if section not in SECTIONS:
                raise ConfigError(why.gettext(
                    "config error: unknown section [%(section)s] in %(path)s; expected one of "
                    "%(known)s", section=section, path=str(config_path),
                    known=", ".join(SECTIONS)))
            known = SECTIONS[section]().fields
            for key, value in parser.items(section):
                if key not in known:
                    raise ConfigError(why.gettext(
                        "config error: unknown key [%(section)s] %(key)s in %(path)s; expected "
                        "one of %(known)s", section=section, key=key, path=str(config_path),
                        known=", ".join(known)))
                raw[section][key] = value
                origin[(section, key)] = str(config_path)
    elif explicit:
        raise ConfigError(why.gettext("config error: config file %(path)s does not exist",
                                      path=str(config_path)))
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or var == "VIPGATE_CONFIG":
            continue
        rest = var[len(ENV_PREFIX):].lower()
        named = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if named is None:
            continue  # not a settings override (e.g. VIPGATE_TEST_MYSQL_URL)
        key = rest[len(named) + 1:]
        if key not in SECTIONS[named]().fields:
            raise ConfigError(why.gettext(
                "config error: unknown key [%(section)s] %(key)s in environment variable "
                "%(variable)s; expected one of %(known)s", section=named, key=key,
                variable=var, known=", ".join(SECTIONS[named]().fields)))
        raw[named][key] = value
        origin[(named, key)] = why.gettext("from %(variable)s", variable=var)
    return _build(raw, origin, source)


def default_settings() -> Settings:
    """Embedded defaults, ignoring any file or environment."""
    return _build({name: {} for name in SECTIONS}, {}, "embedded defaults")

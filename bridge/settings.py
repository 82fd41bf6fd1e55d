"""Settings: one INI file plus ``VIPGATE_<SECTION>_<KEY>`` overrides, validated once.

Everything else in vipgate receives the frozen :class:`Settings` built here. A bad value stops
start-up with :class:`ConfigError`, whose message is one line naming the section, the key, the
value and the form that was expected.
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
from typing import Any

from marshmallow import Schema, ValidationError, post_load
from marshmallow import fields as mf

DEFAULT_CONFIG_PATH = "vipgate.ini"
DEFAULT_DATABASE_URL = "sqlite:///vipgate.db"
ENV_PREFIX = "VIPGATE_"
PRIORITIES = ("Low", "Medium", "High")
# Values never repeated in an error message (they may be secrets, or hold one).
SECRET_KEYS = {("webhook", "secrets"), ("whmcs", "secret"), ("whmcs", "accesskey"),
               ("admin", "secret_key"), ("bridge", "database_url"), ("whmcs", "database_url")}


class ConfigError(Exception):
    """A setting is missing, unknown or malformed; the message is meant for the operator."""


# --- value parsers: each raises ValidationError("expected ...") -----------------------------


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
            raise ValidationError(f"expected a whole number from {self.lo} to {self.hi}")
        return number


class _Float(mf.Field):
    def __init__(self, default: float, lo: float, hi: float, unit: str = "seconds",
                 **kw: Any) -> None:
        super().__init__(load_default=default, **kw)
        self.lo, self.hi, self.unit = lo, hi, unit

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> float:
        try:
            number = float(str(value).strip())
        except ValueError:
            number = float("nan")
        if not self.lo <= number <= self.hi:
            raise ValidationError(f"expected a number of {self.unit} from {self.lo:g} to "
                                  f"{self.hi:g}")
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
            raise ValidationError("expected an amount of money like 10 or 89.90, not negative")
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
        raise ValidationError("expected on or off")


class _Choice(mf.Field):
    def __init__(self, default: str, choices: tuple[str, ...], **kw: Any) -> None:
        super().__init__(load_default=default, **kw)
        self.choices = choices

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        text = str(value).strip()
        for choice in self.choices:
            if text.lower() == choice.lower():
                return choice
        raise ValidationError("expected one of " + ", ".join(self.choices))


class _IdList(mf.Field):
    def __init__(self, **kw: Any) -> None:
        super().__init__(load_default=(), **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> tuple[int, ...]:
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
        if not all(p.isdigit() and 0 < int(p) < 2**32 for p in parts):
            raise ValidationError("expected comma-separated WHMCS ids like 1, 4")
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
            raise ValidationError(f"expected a message of 1 to 1000 characters; it may use "
                                  f"{allowed}")
        try:
            used = [name for _, name, spec, conv in string.Formatter().parse(text)
                    if name is not None]
        except ValueError:
            raise ValidationError("expected { and } only around a placeholder (" + allowed
                                  + "); write {{ or }} for a literal brace") from None
        unknown = sorted({n for n in used if n not in TEMPLATE_FIELDS})
        if unknown:
            raise ValidationError(f"unknown placeholder {{{unknown[0]}}}; expected {allowed}")
        return text


class _Url(mf.Field):
    def __init__(self, schemes: tuple[str, ...] = ("http", "https"), **kw: Any) -> None:
        super().__init__(load_default="", **kw)
        self.schemes = schemes

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        text = str(value).strip()
        if text and not any(text.startswith(f"{s}://") and len(text) > len(s) + 3
                            for s in self.schemes):
            raise ValidationError("expected an URL starting with " + " or ".join(
                f"{s}://" for s in self.schemes))
        return text.rstrip("/")


class _DbUrl(mf.Field):
    def __init__(self, default: str, **kw: Any) -> None:
        super().__init__(load_default=default, **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        text = str(value).strip()
        if text and not (text.startswith("sqlite:///") or text.startswith("mysql+pymysql://")):
            raise ValidationError(
                "expected sqlite:///PATH or mysql+pymysql://USER:PASSWORD@HOST:PORT/DATABASE")
        return text


class _Timezone(mf.Field):
    def __init__(self, **kw: Any) -> None:
        super().__init__(load_default="UTC", **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        text = str(value).strip()
        try:
            zoneinfo.ZoneInfo(text)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValidationError(
                "expected an IANA time zone like America/Sao_Paulo or UTC") from None
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


# --- sections ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BridgeSettings:
    database_url: str = field(repr=False)  # may hold a password
    public_url: str
    timezone: str
    language: str
    run_worker: bool
    precron_wait_seconds: int = 100


@dataclass(frozen=True)
class WebhookSettings:
    secrets: tuple[str, ...] = field(repr=False)
    tolerance_seconds: int
    max_body_bytes: int


@dataclass(frozen=True)
class WhmcsSettings:
    url: str
    identifier: str
    secret: str = field(repr=False)
    accesskey: str = field(repr=False)
    timeout_seconds: float = 10.0
    database_url: str = field(repr=False, default="")


@dataclass(frozen=True)
class PolicySettings:
    vip_group_id: int
    default_group_id: int
    grace_days: int
    grace_in_business_days: bool
    pending_grace_days: int
    collections_owed: bool
    min_overdue_amount: Decimal
    min_tenure_months: int
    late_tolerance_days: int
    lookback_months: int
    min_spend: Decimal
    promote_by_rules: bool
    promise_restores_vip: bool
    follow_staff_changes: bool


@dataclass(frozen=True)
class AdminSettings:
    secret_key: str = field(repr=False)
    secure_cookies: bool
    login_attempts: int
    lockout_minutes: int


@dataclass(frozen=True)
class TicketSettings:
    billing_departments: tuple[int, ...]
    priority_vip: str
    priority_current: str
    priority_overdue: str
    priority_suspended: str
    block_when: str
    block_after_days: int
    staff_note: bool
    fail_open: bool
    block_message_pt_br: str = DEFAULT_BLOCK_MESSAGES["pt_BR"]
    block_message_en: str = DEFAULT_BLOCK_MESSAGES["en"]
    # A blocked client's ticket that never met the gate (e-mail piping, the API):
    # move_and_reply, reply or keep.
    ungated_tickets: str = "move_and_reply"

    def block_message(self, language: str) -> str:
        return self.block_message_pt_br if language == "pt_BR" else self.block_message_en


@dataclass(frozen=True)
class PanelSettings:
    home_banner: bool  # the overdue banner on the client-area home page
    admin_url: str  # where staff's browsers reach vipgate's admin page ("" = public_url)


@dataclass(frozen=True)
class ResyncSettings:
    source: str  # auto (db when [whmcs] database_url is set, else api), db, api
    concurrency: int  # clients applied at once
    processes: int  # processes a database scan of everyone is split over
    rate_per_second: float  # WHMCS API writes per second, across the process


class _Section(Schema):
    dataclass: type

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.dataclass(**data)


class BridgeSchema(_Section):
    dataclass = BridgeSettings
    database_url = _DbUrl(DEFAULT_DATABASE_URL)
    public_url = _Url()
    timezone = _Timezone()
    language = _Choice("pt_BR", ("pt_BR", "en"))
    run_worker = _Bool(True)
    precron_wait_seconds = _Int(100, 1, 115)


class WebhookSchema(_Section):
    dataclass = WebhookSettings
    secrets = _Secrets()
    tolerance_seconds = _Int(300, 30, 3600)
    max_body_bytes = _Int(65536, 1024, 1048576)


class WhmcsSchema(_Section):
    dataclass = WhmcsSettings
    url = _Url()
    identifier = _Text()
    secret = _Text()
    accesskey = _Text()
    timeout_seconds = _Float(10.0, 1.0, 120.0)
    database_url = _DbUrl("")


class PolicySchema(_Section):
    dataclass = PolicySettings
    vip_group_id = _Int(0, 0, 2**32 - 1)
    default_group_id = _Int(0, 0, 2**32 - 1)
    grace_days = _Int(3, 0, 365)
    grace_in_business_days = _Bool(False)
    pending_grace_days = _Int(2, 0, 60)
    collections_owed = _Bool(True)
    min_overdue_amount = _Money("0")
    min_tenure_months = _Int(12, 0, 600)
    late_tolerance_days = _Int(5, 0, 365)
    lookback_months = _Int(12, 1, 120)
    min_spend = _Money("0")
    promote_by_rules = _Bool(False)
    promise_restores_vip = _Bool(False)
    follow_staff_changes = _Bool(True)


class AdminSchema(_Section):
    dataclass = AdminSettings
    secret_key = _Text()
    secure_cookies = _Bool(True)
    login_attempts = _Int(5, 1, 100)
    lockout_minutes = _Int(15, 1, 1440)


UNGATED_TICKETS = ("move_and_reply", "reply", "keep")


class TicketSchema(_Section):
    dataclass = TicketSettings
    billing_departments = _IdList()
    priority_vip = _Choice("High", (*PRIORITIES, "keep"))
    priority_current = _Choice("keep", (*PRIORITIES, "keep"))
    priority_overdue = _Choice("Low", (*PRIORITIES, "keep"))
    priority_suspended = _Choice("Low", (*PRIORITIES, "keep"))
    block_when = _Choice("suspended", ("suspended", "overdue", "never"))
    block_after_days = _Int(0, 0, 365)
    staff_note = _Bool(True)
    fail_open = _Bool(True)
    ungated_tickets = _Choice("move_and_reply", UNGATED_TICKETS)
    block_message_pt_br = _Template(DEFAULT_BLOCK_MESSAGES["pt_BR"])
    block_message_en = _Template(DEFAULT_BLOCK_MESSAGES["en"])


class PanelSchema(_Section):
    dataclass = PanelSettings
    home_banner = _Bool(True)
    admin_url = _Url()


class ResyncSchema(_Section):
    dataclass = ResyncSettings
    source = _Choice("auto", ("auto", "db", "api"))
    concurrency = _Int(4, 1, 32)
    processes = _Int(2, 1, 16)
    rate_per_second = _Float(10.0, 0.1, 1000.0, unit="writes per second")


SECTIONS: dict[str, type[_Section]] = {
    "bridge": BridgeSchema,
    "webhook": WebhookSchema,
    "whmcs": WhmcsSchema,
    "policy": PolicySchema,
    "admin": AdminSchema,
    "tickets": TicketSchema,
    "panels": PanelSchema,
    "resync": ResyncSchema,
}


@dataclass(frozen=True)
class Settings:
    bridge: BridgeSettings
    webhook: WebhookSettings
    whmcs: WhmcsSettings
    policy: PolicySettings
    admin: AdminSettings
    tickets: TicketSettings
    panels: PanelSettings
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
            key, messages = next(iter(sorted(exc.messages.items())))
            message = messages[0] if isinstance(messages, list) else str(messages)
            where = origin.get((name, key), source)
            shown = "<hidden>" if (name, key) in SECRET_KEYS else repr(values.get(key))
            raise ConfigError(
                f"config error: [{name}] {key} = {shown} ({where}): {message}"
            ) from None
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
            raise ConfigError(f"config error: {config_path} is not a valid INI file: {first}")\
                from None
        for section in parser.sections():
            if section not in SECTIONS:
                raise ConfigError(f"config error: unknown section [{section}] in {config_path};"
                                  f" expected one of {', '.join(SECTIONS)}")
            known = SECTIONS[section]().fields
            for key, value in parser.items(section):
                if key not in known:
                    raise ConfigError(f"config error: unknown key [{section}] {key} in "
                                      f"{config_path}; expected one of {', '.join(known)}")
                raw[section][key] = value
                origin[(section, key)] = str(config_path)
    elif explicit:
        raise ConfigError(f"config error: config file {config_path} does not exist")
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or var == "VIPGATE_CONFIG":
            continue
        rest = var[len(ENV_PREFIX):].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            continue  # not a settings override (e.g. VIPGATE_TEST_MYSQL_URL)
        key = rest[len(section) + 1:]
        if key not in SECTIONS[section]().fields:
            raise ConfigError(f"config error: unknown key [{section}] {key} in environment "
                              f"variable {var}; expected one of "
                              f"{', '.join(SECTIONS[section]().fields)}")
        raw[section][key] = value
        origin[(section, key)] = f"from {var}"
    return _build(raw, origin, source)


def default_settings() -> Settings:
    """Embedded defaults, ignoring any file or environment."""
    return _build({name: {} for name in SECTIONS}, {}, "embedded defaults")

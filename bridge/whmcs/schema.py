"""WHMCS's tables, with WHMCS's own table and column names and types.

A subset of the columns of a WHMCS 8.x install (shared/whmcs-reference.md §3, taken from
public schema dumps): every column vipgate reads (the bulk reader,
:mod:`bridge.resync.source_db`) or the sandbox WHMCS's emulated behaviour touches, spelled as
WHMCS spells it (``tblhosting.overideautosuspend``, ``tbltickets.urgency``/``title``/``did``).
Checkbox-like TEXT columns hold ``'on'``/``''``; "empty" dates are the zero date
``'0000-00-00 00:00:00'`` / ``'0000-00-00'`` (Python ``None``), stored as such on MariaDB and
as the same text on SQLite.

Deviations, for portability: ``created_at``/``updated_at`` are DATETIME rather than TIMESTAMP
(MariaDB gives the first TIMESTAMP column an implicit ON UPDATE); integer widths and
UNSIGNED are not reproduced. Creating the tables and WHMCS's default rows is the sandbox's
(:mod:`bridge.sandbox.schema`); vipgate itself only reads them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

metadata = sa.MetaData()

ZERO_DATETIME = "0000-00-00 00:00:00"
ZERO_DATE = "0000-00-00"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

Tiny = sa.SmallInteger().with_variant(mysql.TINYINT(1), "mysql", "mariadb")
MediumText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
Money = sa.Numeric(16, 2)


def _is_mysql(dialect: Any) -> bool:
    return dialect.name in ("mysql", "mariadb")


class ZeroDateTime(sa.types.TypeDecorator[datetime]):
    """WHMCS's ``datetime NOT NULL DEFAULT '0000-00-00 00:00:00'``; Python ``None`` is the zero
    value. DATETIME on MariaDB, ``YYYY-MM-DD HH:MM:SS`` text on SQLite."""

    impl = sa.String(19)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(mysql.DATETIME() if _is_mysql(dialect) else sa.String(19))

    def process_bind_param(self, value: Any, dialect: Any) -> str:
        if value is None:
            return ZERO_DATETIME
        if isinstance(value, datetime):
            return value.strftime(DATETIME_FORMAT)
        if isinstance(value, date):
            return value.isoformat() + " 00:00:00"
        return str(value)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        text = str(value)
        if text.startswith("0000-00-00"):
            return None
        return datetime.fromisoformat(text[:19])  # YYYY-MM-DD HH:MM:SS, as DATETIME_FORMAT


class ZeroDate(sa.types.TypeDecorator[date]):
    """WHMCS's ``date NOT NULL DEFAULT '0000-00-00'``; Python ``None`` is the zero value."""

    impl = sa.String(10)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(mysql.DATE() if _is_mysql(dialect) else sa.String(10))

    def process_bind_param(self, value: Any, dialect: Any) -> str:
        if value is None:
            return ZERO_DATE
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        return str(value)

    def process_result_value(self, value: Any, dialect: Any) -> date | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        text = str(value)
        if text.startswith("0000-00-00"):
            return None
        return date.fromisoformat(text[:10])


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _text(name: str, **kw: Any) -> sa.Column[Any]:
    """TEXT NOT NULL; WHMCS declares no default, inserts from here default to ''."""
    return sa.Column(name, sa.Text, nullable=False, default="", **kw)


def _int(name: str, default: int = 0) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer, nullable=False, default=default, server_default=str(default))


def _tiny(name: str, default: int = 0) -> sa.Column[Any]:
    return sa.Column(name, Tiny, nullable=False, default=default, server_default=str(default))


def _money(name: str) -> sa.Column[Any]:
    return sa.Column(name, Money, nullable=False, default=0, server_default="0.00")


def _zero_dt(name: str) -> sa.Column[Any]:
    return sa.Column(name, ZeroDateTime, nullable=False, server_default=ZERO_DATETIME)


def _zero_d(name: str) -> sa.Column[Any]:
    return sa.Column(name, ZeroDate, nullable=False, server_default=ZERO_DATE)


CONTACT_FIELDS = ("firstname", "lastname", "companyname", "email", "address1", "address2",
                  "city", "state", "postcode", "country", "phonenumber")

tblclients = sa.Table(
    "tblclients", metadata, _id(),
    sa.Column("uuid", sa.String(255), nullable=False, default="", server_default=""),
    *(_text(name) for name in CONTACT_FIELDS),
    sa.Column("tax_id", sa.String(128), nullable=False, default="", server_default=""),
    _text("password"), _text("authmodule"), _text("authdata"),
    _int("currency", 1), _text("defaultgateway"), _money("credit"),
    _tiny("taxexempt"), _tiny("latefeeoveride"), _tiny("overideduenotices"),
    _tiny("separateinvoices"), _tiny("disableautocc"),
    sa.Column("datecreated", sa.Date, nullable=False),
    _text("notes"), _int("billingcid"), _int("securityqid"), _text("securityqans"),
    _int("groupid"),  # 0 = no group
    sa.Column("lastlogin", sa.DateTime, nullable=True),
    _text("ip"), _text("host"),
    sa.Column("status", sa.Enum("Active", "Inactive", "Closed", name="client_status"),
              nullable=False, default="Active", server_default="Active"),
    _text("language"), _text("pwresetkey"), _int("emailoptout"),
    _tiny("marketing_emails_opt_in"), _int("overrideautoclose"), _tiny("allow_sso", 1),
    _tiny("email_verified"), sa.Column("email_preferences", sa.Text, nullable=True),
    _zero_dt("created_at"), _zero_dt("updated_at"),
    sa.Index("tblclients_status_id", "status", "id"),
    sa.Index("tblclients_email", "email", mysql_length=64),
)

tblclientgroups = sa.Table(
    "tblclientgroups", metadata, _id(),
    sa.Column("groupname", sa.String(45), nullable=False),
    sa.Column("groupcolour", sa.String(45), nullable=True),
    sa.Column("discountpercent", sa.Numeric(10, 2), nullable=True, default=0,
              server_default="0.00"),
    sa.Column("susptermexempt", sa.Text, nullable=True),  # 'on' or ''
    _text("separateinvoices"),
)

tblcurrencies = sa.Table(
    "tblcurrencies", metadata, _id(),
    _text("code"), _text("prefix"), _text("suffix"), _int("format", 1),
    sa.Column("rate", sa.Numeric(10, 5), nullable=False, default=1, server_default="1.00000"),
    _int("default"),
)

tblinvoices = sa.Table(
    "tblinvoices", metadata, _id(),
    sa.Column("userid", sa.Integer, nullable=False),
    _text("invoicenum"),
    sa.Column("date", sa.Date, nullable=True),
    sa.Column("duedate", sa.Date, nullable=True),
    _zero_dt("datepaid"), _zero_dt("last_capture_attempt"), _zero_dt("date_refunded"),
    _zero_dt("date_cancelled"),
    _money("subtotal"), _money("credit"), _money("tax"), _money("tax2"), _money("total"),
    sa.Column("taxrate", sa.Numeric(10, 3), nullable=False, default=0, server_default="0.000"),
    sa.Column("taxrate2", sa.Numeric(10, 3), nullable=False, default=0, server_default="0.000"),
    _text("status"),  # TEXT, indexed on its first 3 characters
    _text("paymentmethod"),
    sa.Column("paymethodid", sa.Integer, nullable=True),
    _text("notes"), _zero_dt("created_at"), _zero_dt("updated_at"),
    sa.Index("tblinvoices_userid", "userid"),
    sa.Index("tblinvoices_status", "status", mysql_length=3),
    sa.Index("tblinvoices_duedate", "duedate"),
)

tblinvoiceitems = sa.Table(
    "tblinvoiceitems", metadata, _id(),
    _int("invoiceid"), sa.Column("userid", sa.Integer, nullable=False),
    sa.Column("type", sa.String(30), nullable=False, default=""),  # 'Hosting', 'LateFee', ...
    _int("relid"), _text("description"), _money("amount"), _int("taxed"),
    sa.Column("duedate", sa.Date, nullable=True),
    _text("paymentmethod"), _text("notes"),
    sa.Index("tblinvoiceitems_invoiceid", "invoiceid"),
    sa.Index("tblinvoiceitems_userid", "userid", "type", "relid"),
)

tblaccounts = sa.Table(
    "tblaccounts", metadata, _id(),
    sa.Column("userid", sa.Integer, nullable=False), _int("currency"), _text("gateway"),
    sa.Column("date", sa.DateTime, nullable=True), _text("description"),
    _money("amountin"), _money("fees"), _money("amountout"),
    sa.Column("rate", sa.Numeric(16, 5), nullable=False, default=1, server_default="1.00000"),
    _text("transid"), _int("invoiceid"), _int("refundid"),
    sa.Index("tblaccounts_invoiceid", "invoiceid"),
    sa.Index("tblaccounts_userid", "userid"),
)

tblproductgroups = sa.Table(
    "tblproductgroups", metadata, _id(), _text("name"),
)

tblproducts = sa.Table(
    "tblproducts", metadata, _id(),
    sa.Column("type", sa.Text, nullable=False, default="hostingaccount"), _int("gid"),
    _text("name"), _text("description"),
    _text("servertype"),  # the provisioning module; '' = no module
)

tblservers = sa.Table(
    "tblservers", metadata, _id(),
    _text("name"), _text("ipaddress"), _text("hostname"), _text("type"),
    _text("username"), _text("password"), _text("accesshash"),
    sa.Column("secure", sa.Text, nullable=False, default="on"),
    sa.Column("port", sa.Integer, nullable=True),
)

SERVICE_STATUSES = ("Pending", "Active", "Suspended", "Terminated", "Cancelled", "Fraud",
                    "Completed")

tblhosting = sa.Table(
    "tblhosting", metadata, _id(),
    sa.Column("userid", sa.Integer, nullable=False), _int("orderid"), _int("packageid"),
    _int("server"), sa.Column("regdate", sa.Date, nullable=False),
    _text("domain"), _text("paymentmethod"), _int("qty", 1),
    _money("firstpaymentamount"), _money("amount"), _text("billingcycle"),
    sa.Column("nextduedate", sa.Date, nullable=True),
    _zero_d("nextinvoicedate"), _zero_d("termination_date"), _zero_d("completed_date"),
    sa.Column("domainstatus", sa.Enum(*SERVICE_STATUSES, name="service_status"),
              nullable=False, default="Pending", server_default="Pending"),
    _text("username"), _text("password"), _text("notes"), _text("subscriptionid"),
    _int("promoid"), _int("promocount"),
    _text("suspendreason"), _tiny("overideautosuspend"), _zero_d("overidesuspenduntil"),
    _text("dedicatedip"), _text("assignedips"), _text("ns1"), _text("ns2"),
    _int("diskusage"), _int("disklimit"), _int("bwusage"), _int("bwlimit"),
    _zero_dt("lastupdate"), _zero_dt("created_at"), _zero_dt("updated_at"),
    sa.Index("tblhosting_userid", "userid"),
    sa.Index("tblhosting_domainstatus", "domainstatus"),
)

tblticketdepartments = sa.Table(
    "tblticketdepartments", metadata, _id(),
    _text("name"), _text("description"), _text("email"), _text("clientsonly"),
    _text("piperepliesonly"), _text("noautoresponder"), _text("hidden"), _int("order"),
    _text("host"), _text("port"), _text("login"), _text("password"),
)

tblticketstatuses = sa.Table(
    "tblticketstatuses", metadata, _id(),
    sa.Column("title", sa.String(64), nullable=False), _text("color"), _int("sortorder"),
    _int("showactive"), _int("showawaiting"), _int("autoclose"),
)

tbltickets = sa.Table(
    "tbltickets", metadata, _id(),
    sa.Column("tid", sa.String(128), nullable=True),  # the public mask, e.g. ABC-123456
    sa.Column("did", sa.Integer, nullable=False),  # department
    sa.Column("userid", sa.Integer, nullable=False), _int("contactid"), _int("requestor_id"),
    _text("name"), _text("email"), _text("cc"), _text("c"),
    sa.Column("ipaddress", sa.String(64), nullable=True),
    _zero_dt("date"), _text("title"), _text("message"),
    sa.Column("status", sa.String(64), nullable=False),
    _text("urgency"),  # the priority: Low / Medium / High
    _text("admin"), _text("attachment"), _tiny("attachments_removed"),
    sa.Column("lastreply", sa.DateTime, nullable=False),
    _int("flag"), _int("clientunread"), _text("adminunread"), _int("replyingadmin"),
    _zero_dt("replyingtime"), _text("service"), _int("merged_ticket_id"),
    sa.Column("editor", sa.Enum("plain", "markdown", "bbcode", name="ticket_editor"),
              nullable=False, default="plain", server_default="plain"),
    _zero_dt("updated_at"),
    sa.Index("tbltickets_userid", "userid"),
    sa.Index("tbltickets_did", "did"),
    sa.Index("tbltickets_status", "status"),
)

tblticketreplies = sa.Table(
    "tblticketreplies", metadata, _id(),
    sa.Column("tid", sa.Integer, nullable=False),  # = tbltickets.id
    _int("userid"), _int("contactid"), _int("requestor_id"), _text("name"), _text("email"),
    sa.Column("date", sa.DateTime, nullable=False), _text("message"), _text("admin"),
    _text("attachment"), _tiny("attachments_removed"), _int("rating"),
    sa.Column("editor", sa.Enum("plain", "markdown", name="reply_editor"), nullable=False,
              default="plain", server_default="plain"),
    sa.Index("tblticketreplies_tid_date", "tid", "date"),
)

tblticketnotes = sa.Table(
    "tblticketnotes", metadata, _id(),
    sa.Column("ticketid", sa.Integer, nullable=False), _text("admin"), _zero_dt("date"),
    _text("message"), _text("attachments"), _tiny("attachments_removed"),
    sa.Column("editor", sa.Enum("plain", "markdown", name="note_editor"), nullable=False,
              default="plain", server_default="plain"),
    sa.Index("tblticketnotes_ticketid_date", "ticketid", "date"),
)

tblconfiguration = sa.Table(
    "tblconfiguration", metadata, _id(),
    sa.Column("setting", sa.String(64), nullable=False, unique=True),
    sa.Column("value", MediumText, nullable=False, default=""),
    _zero_dt("created_at"), _zero_dt("updated_at"),
)

# Addon modules' settings (WHMCS 8.4): one row per module and setting, the 'version' row
# written on activation, the 'access' row (admin role ids) and one row per field on save.
tbladdonmodules = sa.Table(
    "tbladdonmodules", metadata, _id(),
    _text("module"), _text("setting"), _text("value"),
)

tblactivitylog = sa.Table(
    "tblactivitylog", metadata, _id(),
    _zero_dt("date"), _text("description"), _text("user"),
    _int("userid"), _int("user_id"), _int("admin_id"), _text("ipaddr"),
    sa.Index("tblactivitylog_userid", "userid"),
)

tbldeviceauth = sa.Table(
    "tbldeviceauth", metadata, _id(),
    sa.Column("identifier", sa.String(255), nullable=False, unique=True),
    sa.Column("secret", sa.String(255), nullable=False, default=""),  # hashed
    sa.Column("compat_secret", sa.String(255), nullable=False, default=""),
    _int("user_id"), _tiny("is_admin", 1),
    _text("role_ids"),  # JSON list of tblapi_roles ids
    sa.Column("description", sa.String(255), nullable=False, default=""),
    _zero_dt("last_access"), _zero_dt("created_at"), _zero_dt("updated_at"),
    sa.Column("deleted_at", sa.DateTime, nullable=True),
)

# Administrators, only as far as API authentication reads them: a credential belongs to one
# (tbldeviceauth.user_id), and a disabled one refuses the API ("Administrator Account
# Disabled"). A credential whose admin has no row here counts as an enabled admin's.
tbladmins = sa.Table(
    "tbladmins", metadata, _id(),
    sa.Column("username", sa.String(255), nullable=False, default=""),
    # the admin's WHMCS language name (english, portuguese-br): the addon module's words
    sa.Column("language", sa.String(64), nullable=False, default=""),
    _tiny("disabled", 0),
)

tblapi_roles = sa.Table(
    "tblapi_roles", metadata, _id(),
    sa.Column("role", sa.String(255), nullable=False, default=""),
    sa.Column("description", sa.String(255), nullable=False, default=""),
    _text("permissions"),  # JSON like {"getclients":1}
    _zero_dt("created_at"), _zero_dt("updated_at"),
)

"""The sandbox WHMCS's database: WHMCS's tables (:mod:`bridge.whmcs.schema`) created with
WHMCS's default rows, and the session settings a WHMCS server runs its database with."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bridge.store.database import make_sql_engine
from bridge.whmcs.schema import (
    metadata,
    tblconfiguration,
    tblcurrencies,
    tblticketstatuses,
)

# Values found in the WHMCS 8.4.0 demo dump (whmcs-reference §3), plus what the sandbox needs.
DEFAULT_CONFIGURATION: dict[str, str] = {
    "AutoSuspension": "on",
    "AutoSuspensionDays": "5",
    "AutoUnsuspend": "on",
    "AutoTermination": "",
    "AutoTerminationDays": "30",
    "CreateInvoiceDaysBefore": "14",
    "ContinuousInvoiceGeneration": "",
    "SendReminder": "on",
    "SendInvoiceReminderDays": "7",
    "AddLateFeeDays": "5",
    "LateFeeType": "Percentage",
    "InvoiceLateFeeAmount": "10.00",
    "NoAutoApplyCredit": "",
    "CancelInvoiceOnCancellation": "on",
    "CloseInactiveTickets": "0",
    "SupportTicketOrder": "ASC",
    "TicketMask": "%A%A%A-%n%n%n%n%n%n",
    "APIAllowedIPs": "",  # replaced below: loopback only (PHP-serialized list)
    "DailyCronExecutionHour": "09",
    "HooksDebugMode": "",
    "Version": "8.4.0-release.1",
}



def php_serialize_ips(ips: list[str]) -> str:
    """APIAllowedIPs as WHMCS stores it: a PHP-serialized list of {ip, note}."""
    def php_str(text: str) -> str:
        return f's:{len(text.encode())}:"{text}";'
    entries = "".join(f"i:{n};a:2:{{{php_str('ip')}{php_str(ip)}{php_str('note')}{php_str('')}}}"
                      for n, ip in enumerate(ips))
    return f"a:{len(ips)}:{{{entries}}}"


def php_unserialize_ips(value: str) -> list[str]:
    """The IPs in an APIAllowedIPs value (tolerates a plain comma/newline-separated list)."""
    found = re.findall(r's:\d+:"ip";s:\d+:"([^"]*)";', value or "")
    if found or (value or "").startswith("a:"):
        return found
    return [part.strip() for part in re.split(r"[,\s]+", value or "") if part.strip()]


DEFAULT_CONFIGURATION["APIAllowedIPs"] = php_serialize_ips(["127.0.0.1", "::1"])

# title, color, sortorder, showactive, showawaiting, autoclose (WHMCS's default rows)
DEFAULT_TICKET_STATUSES = (
    ("Open", "#779500", 1, 1, 1, 0),
    ("Answered", "#000000", 2, 1, 0, 1),
    ("Customer-Reply", "#ff6600", 3, 1, 1, 1),
    ("Closed", "#888888", 10, 0, 0, 0),
    ("On Hold", "#224488", 5, 1, 0, 0),
    ("In Progress", "#cc0000", 6, 1, 0, 0),
)


def _relax_sql_mode(dbapi_connection: Any, _record: Any) -> None:
    """WHMCS needs MySQL strict mode off and zero dates allowed (its columns default to
    '0000-00-00 00:00:00'); set the session as a WHMCS server is configured."""
    cursor = dbapi_connection.cursor()
    cursor.execute("SELECT @@SESSION.sql_mode")
    modes = str(cursor.fetchone()[0] or "").split(",")
    drop = {"NO_ZERO_DATE", "NO_ZERO_IN_DATE", "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES"}
    kept = ",".join(m for m in modes if m and m not in drop)
    cursor.execute("SET SESSION sql_mode = %s", (kept,))
    cursor.close()


def make_whmcs_engine(url: str) -> Engine:
    engine = make_sql_engine(url)
    if engine.dialect.name in ("mysql", "mariadb"):
        sa.event.listen(engine, "connect", _relax_sql_mode)
    return engine


def create_schema(engine: Engine) -> None:
    """Create the tables (if missing) and WHMCS's default rows (if missing)."""
    metadata.create_all(engine)
    with engine.begin() as conn:
        have = set(conn.execute(sa.select(tblconfiguration.c.setting)).scalars())
        missing = [{"setting": k, "value": v} for k, v in DEFAULT_CONFIGURATION.items()
                   if k not in have]
        if missing:
            conn.execute(tblconfiguration.insert(), missing)
        if conn.execute(sa.select(sa.func.count()).select_from(tblcurrencies)).scalar() == 0:
            conn.execute(tblcurrencies.insert().values(
                code="USD", prefix="$", suffix=" USD", format=2, rate=1, default=1))
        if conn.execute(sa.select(sa.func.count()).select_from(tblticketstatuses)).scalar() == 0:
            conn.execute(tblticketstatuses.insert(), [
                dict(zip(("title", "color", "sortorder", "showactive", "showawaiting",
                          "autoclose"), row, strict=True)) for row in DEFAULT_TICKET_STATUSES])

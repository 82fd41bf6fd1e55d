"""Clients, client groups and API credentials, as WHMCS keeps them."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bridge.sandbox.core import SandboxCore, WhmcsError, as_date, inserted_id
from bridge.sandbox.schema import php_serialize_ips, php_unserialize_ips
from bridge.whmcs.schema import (
    CONTACT_FIELDS,
    tbladmins,
    tblapi_roles,
    tblclientgroups,
    tblclients,
    tblcurrencies,
    tbldeviceauth,
)

CLIENT_STATUSES = ("Active", "Inactive", "Closed")
CLIENT_PASSWORD_HASH = "$2y$10$sandboxsandboxsandboxsandboxsandboxsandbox"  # noqa: S105 (fake)
CLIENT_FLAGS = ("taxexempt", "latefeeoveride", "overideduenotices", "separateinvoices",
                "disableautocc", "emailoptout", "marketing_emails_opt_in", "overrideautoclose")
# What UpdateClient (and update_client) may change.
EDITABLE = (*CONTACT_FIELDS, "currency", "groupid", "language", "notes", "status",
            "defaultgateway", "tax_id", *CLIENT_FLAGS)


def hash_secret(secret: str) -> str:
    salt = secrets.token_hex(8)
    return f"sha256${salt}${hashlib.sha256((salt + secret).encode()).hexdigest()}"


def secret_matches(stored: str, secret: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$", 2)
    except ValueError:
        return False
    candidate = hashlib.sha256((salt + secret).encode()).hexdigest()
    return scheme == "sha256" and hmac.compare_digest(candidate, digest)


@dataclass(frozen=True)
class ApiAccess:
    """A caller the API let in: the actions its roles allow (lower-cased), and the username
    of the admin it acts as."""

    allowed: frozenset[str]
    admin: str


# One statement for the credential and its admin (the API checks both on every call).
_CREDENTIAL = sa.text(
    "SELECT d.secret, d.role_ids, d.is_admin, a.username, a.disabled FROM tbldeviceauth d"
    " LEFT JOIN tbladmins a ON a.id = d.user_id"
    " WHERE d.identifier = :identifier AND d.deleted_at IS NULL")


_ROLES = sa.text("SELECT permissions FROM tblapi_roles WHERE id IN :ids").bindparams(
    sa.bindparam("ids", expanding=True))


def _credential(conn: Connection, identifier: str) -> Any:
    return conn.execute(_CREDENTIAL, {"identifier": identifier}).first()


def _allowed_actions(conn: Connection, role_ids_json: str | None) -> set[str]:
    """The lower-cased actions the roles in ``role_ids_json`` (a JSON list) allow."""
    try:
        role_ids = [int(r) for r in json.loads(role_ids_json or "[]")]
    except (ValueError, TypeError):
        role_ids = []
    allowed: set[str] = set()
    for permissions in conn.execute(_ROLES, {"ids": role_ids}).scalars():
        try:
            allowed |= {k.lower() for k, v in json.loads(permissions or "{}").items() if v}
        except (ValueError, AttributeError):
            continue
    return allowed


def client_hook_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The client fields WHMCS passes to ClientAdd / ClientEdit (names as documented)."""
    fields: dict[str, Any] = {"uuid": row["uuid"]}
    fields.update({name: row[name] for name in CONTACT_FIELDS})
    fields.update(tax_id=row["tax_id"], currency=int(row["currency"]), notes=row["notes"],
                  status=row["status"], language=row["language"],
                  billingcid=int(row["billingcid"]), groupid=int(row["groupid"]),
                  allow_sso=bool(row["allow_sso"]), authmodule=row["authmodule"],
                  authdata=row["authdata"], email_verified=bool(row["email_verified"]),
                  isOptedInToMarketingEmails=bool(row["marketing_emails_opt_in"]))
    fields.update({flag: bool(row[flag]) for flag in CLIENT_FLAGS})
    return fields


class ClientsMixin(SandboxCore):
    # --- seeding -----------------------------------------------------------------------

    def add_currency(self, code: str, prefix: str, suffix: str, *, rate: float = 1.0,
                     default: bool = False) -> int:
        with self.transaction() as conn:
            if default:
                conn.execute(tblcurrencies.update().values(default=0))
            return inserted_id(conn.execute(tblcurrencies.insert().values(
                code=code, prefix=prefix, suffix=suffix, format=1, rate=rate,
                default=int(default))))

    def add_group(self, name: str, susptermexempt: bool = False, *,
                  groupcolour: str | None = None, discountpercent: float = 0.0) -> int:
        """A client group (there is no API to create one: WHMCS admins do it by hand)."""
        with self.transaction() as conn:
            return inserted_id(conn.execute(tblclientgroups.insert().values(
                groupname=name, groupcolour=groupcolour, discountpercent=discountpercent,
                susptermexempt="on" if susptermexempt else "", separateinvoices="",
            )))

    def add_client(self, firstname: str = "Test", lastname: str = "Client",
                   email: str | None = None, *, groupid: int = 0, status: str = "Active",
                   datecreated: date | str | None = None, companyname: str = "",
                   currency: int = 1, language: str = "", country: str = "BR",
                   credit: float = 0.0) -> int:
        """A client, as the admin area's Add Client does; fires ClientAdd."""
        if status not in CLIENT_STATUSES:
            raise ValueError(f"client status must be one of {CLIENT_STATUSES}")
        with self.transaction() as conn:
            if email is None:
                email = self._free_email(conn, f"{firstname}.{lastname}".lower())
            elif self._client_by_email(conn, email) is not None:
                raise WhmcsError("A user already exists with that email address")
            client_id = inserted_id(conn.execute(tblclients.insert().values(
                uuid=str(uuid.UUID(int=self.random.getrandbits(128), version=4)),
                firstname=firstname, lastname=lastname, companyname=companyname, email=email,
                country=country, password=CLIENT_PASSWORD_HASH,
                currency=currency, credit=credit, groupid=groupid, status=status,
                language=language, datecreated=as_date(datecreated) or self.today,
                created_at=self.now, updated_at=self.now)))
            row = self._require(conn, tblclients, client_id, "Client ID Not Found")
        self.run_hook("ClientAdd", {
            "client_id": client_id, "user_id": client_id, "userid": client_id,
            **client_hook_fields(row), "password": "sandbox-plaintext-password",
            "customFields": [], "groupid": groupid})
        return client_id

    def _free_email(self, conn: Connection, stem: str) -> str:
        stem = "".join(ch for ch in stem if ch.isalnum() or ch in "._-") or "client"
        candidate, n = f"{stem}@example.com", 1
        while self._client_by_email(conn, candidate) is not None:
            n += 1
            candidate = f"{stem}{n}@example.com"
        return candidate

    def _client_by_email(self, conn: Connection, email: str) -> dict[str, Any] | None:
        row = conn.execute(sa.select(tblclients).where(tblclients.c.email == email)
                           ).mappings().first()
        return dict(row) if row is not None else None

    # --- reading -----------------------------------------------------------------------

    def client(self, client_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            return self.get_row(conn, tblclients, client_id)

    def group(self, group_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            return self.get_row(conn, tblclientgroups, group_id)

    def find_client(self, conn: Connection, clientid: Any = None,
                    email: str | None = None) -> dict[str, Any] | None:
        if clientid not in (None, ""):
            return self.get_row(conn, tblclients, clientid)
        if email:
            return self._client_by_email(conn, email)
        return None

    # --- UpdateClient ------------------------------------------------------------------

    def update_client(self, client_id: int, **changes: Any) -> None:
        """UpdateClient: change the given tblclients fields, then fire ClientEdit with
        ``olddata`` (WHMCS fires it for edits from the client area, admin area and API)."""
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise TypeError(f"update_client cannot change {sorted(unknown)}")
        with self.transaction() as conn:
            old = self._require(conn, tblclients, client_id, "Client ID Not Found")
            values = self._client_values(conn, old, changes)
            values["updated_at"] = self.now
            conn.execute(tblclients.update().where(tblclients.c.id == old["id"]).values(values))
            new = self._require(conn, tblclients, client_id, "Client ID Not Found")
        olddata = {"id": old["id"], **client_hook_fields(old), "password": old["password"]}
        self.run_hook("ClientEdit", {"userid": int(new["id"]), **client_hook_fields(new),
                                     "olddata": olddata})

    def _client_values(self, conn: Connection, old: dict[str, Any],
                       changes: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, raw in changes.items():
            if name in ("currency", "groupid"):
                values[name] = int(raw or 0)
            elif name in CLIENT_FLAGS:
                values[name] = int(raw in (True, 1, "1", "on", "true"))
            else:
                values[name] = "" if raw is None else str(raw)
        if "status" in values and values["status"] not in CLIENT_STATUSES:
            raise WhmcsError("Invalid Client Status. Valid statuses are: "
                             + ",".join(CLIENT_STATUSES))
        email = values.get("email")
        if email and email != old["email"]:
            other = self._client_by_email(conn, email)
            if other is not None and other["id"] != old["id"]:
                raise WhmcsError("Duplicate Email Address")
        return values

    # --- API credentials ---------------------------------------------------------------

    def add_api_credential(self, identifier: str, secret: str,
                           allowed_actions: Iterable[str] | None = None, *,
                           description: str = "") -> int:
        """An API credential (tbldeviceauth) with one role (tblapi_roles) allowing
        ``allowed_actions`` (names as in the API, any case); None allows every action the
        sandbox API knows."""
        if allowed_actions is None:
            from bridge.sandbox.actions_common import registered_actions

            allowed_actions = registered_actions()
        permissions = {action.lower(): 1 for action in allowed_actions}
        with self.transaction() as conn:
            role_id = inserted_id(conn.execute(tblapi_roles.insert().values(
                role=f"{identifier} role", description=description,
                permissions=json.dumps(permissions), created_at=self.now, updated_at=self.now,
            )))
            return inserted_id(conn.execute(tbldeviceauth.insert().values(
                identifier=identifier, secret=hash_secret(secret), user_id=1, is_admin=1,
                role_ids=json.dumps([role_id]), description=description,
                created_at=self.now, updated_at=self.now)))

    def has_api_credential(self, identifier: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(tbldeviceauth.c.id).where(
                tbldeviceauth.c.identifier == identifier)).first() is not None

    def is_empty(self) -> bool:
        """No client and no client group yet: a new installation."""
        with self.engine.connect() as conn:
            return not any(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                           for table in (tblclients, tblclientgroups))

    def authenticate(self, identifier: str, secret: str) -> set[str] | None:
        """The allowed (lower-cased) actions for this credential; None if it is not valid."""
        with self.engine.connect() as conn:
            row = _credential(conn, identifier)
            if row is None or not secret_matches(row.secret, secret):
                return None
            return _allowed_actions(conn, row.role_ids)

    def api_access(self, identifier: str, secret: str, ip: str, *,
                   check_ip: bool) -> ApiAccess | str:
        """The API's checks of a caller, in WHMCS's order, in one connection (the API answers
        every call after them): the IP allow-list when ``check_ip`` ("Invalid IP ..."), the
        credential (:meth:`authenticate`; "Invalid or missing credentials"), then why WHMCS
        refuses a credential whose secret matched: "Access Denied" for one that is not an
        admin's API credential (``is_admin`` 0), "Administrator Account Disabled" when its
        admin is disabled (whmcs-reference §6). Returns WHMCS's error message, or what the
        credential may do and the username of the admin it acts as ("admin" when tbladmins
        has no row for it: the sandbox's first administrator)."""
        with self.engine.connect() as conn:
            if check_ip and ip not in php_unserialize_ips(self.setting("APIAllowedIPs", conn)):
                return f"Invalid IP {ip}"
            row = _credential(conn, identifier) if identifier and secret else None
            if row is None or not secret_matches(row.secret, secret):
                return "Invalid or missing credentials"
            if not row.is_admin:
                return "Access Denied"
            if row.disabled:
                return "Administrator Account Disabled"
            return ApiAccess(frozenset(_allowed_actions(conn, row.role_ids)),
                             str(row.username) if row.username else "admin")

    def set_admin_disabled(self, user_id: int, disabled: bool = True,
                           username: str = "admin") -> None:
        """Disable (or enable) the administrator ``user_id`` (tbladmins.disabled)."""
        with self.transaction() as conn:
            done = conn.execute(tbladmins.update().where(tbladmins.c.id == user_id).values(
                disabled=int(disabled)))
            if done.rowcount == 0:
                conn.execute(tbladmins.insert().values(id=user_id, username=username,
                                                       disabled=int(disabled)))

    def set_api_credential_admin(self, identifier: str, is_admin: bool) -> None:
        """Mark a credential as an admin's API credential or not (tbldeviceauth.is_admin)."""
        with self.transaction() as conn:
            conn.execute(tbldeviceauth.update().where(
                tbldeviceauth.c.identifier == identifier).values(is_admin=int(is_admin)))

    def allow_api_ips(self, *ips: str) -> None:
        """Replace the API IP allow-list (General Settings > Security; APIAllowedIPs)."""
        self.configure(APIAllowedIPs=php_serialize_ips(list(ips)))

    def api_ip_allowed(self, ip: str) -> bool:
        return ip in php_unserialize_ips(self.setting("APIAllowedIPs"))

"""The sandbox WHMCS alone, as ``vipgate sandbox`` serves it (:mod:`bridge.cli.sandbox`).

:func:`prepare_sandbox` opens (or creates) the sandbox's WHMCS-shaped tables, seeds a small
readable dataset when the database is new and makes an API credential; :func:`banner` prints
the API URL, the credential and the ``[whmcs]`` lines for vipgate.ini;
:meth:`SandboxSetup.serve` serves ``/includes/api.php`` until Ctrl-C. With a bridge URL and a
webhook secret its hooks go to that bridge (through the real PHP stub when ``php`` is
installed); without them they are recorded but not forwarded. The CLI reaches the sandbox only
through this module.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

from bridge.i18n import Texts, render_reason, why
from bridge.sandbox.clock import add_months
from bridge.sandbox.forwarder import Forwarder, PhpForwarder, PythonForwarder, php_available
from bridge.sandbox.schema import php_unserialize_ips
from bridge.sandbox.whmcs import Sandbox
from bridge.settings import check_webhook_secret, shown_url
from bridge.whmcs.stub_install import HOOK_PATH, StubInstallError, install_stub

SANDBOX_DATABASE_URL = "sqlite:///whmcs-sandbox.db"
DEFAULT_PORT = 8081


class SandboxSetupError(Exception):
    """Bad input for the sandbox; the message is one line naming it (exit code 2)."""


@dataclass
class SandboxSetup:
    """A sandbox ready to serve, its API credential and what was done to prepare it."""

    sandbox: Sandbox
    identifier: str
    secret: str = field(repr=False)
    credential: str  # "generated", "created" (from the options) or "existing"
    seeded: list[str]  # lines describing the seeded data; empty = nothing seeded
    hooks: str  # where hooks go, in words
    forwarder: Forwarder | None = None

    def whmcs_ini(self, url: str) -> list[str]:
        """The ``[whmcs]`` lines for vipgate.ini (``url`` is the WHMCS base URL)."""
        return ["[whmcs]", f"url = {url}", f"identifier = {self.identifier}",
                f"secret = {self.secret}"]

    def serve(self, host: str, port: int, *, ready: Callable[[str], None]) -> None:
        """Serve the sandbox's API until Ctrl-C; ``ready`` gets its base URL once bound."""
        from bridge.sandbox.serve import serve_sandbox  # the web server: only when serving

        serve_sandbox(self.sandbox, host, port, ready=ready)


def prepare_sandbox(database_url: str = SANDBOX_DATABASE_URL, *, seed: bool = True,
                    bridge_url: str | None = None, webhook_secret: str | None = None,
                    identifier: str | None = None, api_secret: str | None = None,
                    use_php: bool | None = None) -> SandboxSetup:
    """Open the sandbox, seed it when new, make the API credential and the hook forwarder.

    ``use_php`` None picks the real PHP stub when ``php`` is installed. Raises
    SandboxSetupError for bad input, SQLAlchemyError when the database fails.
    """
    target = _bridge_target(bridge_url, webhook_secret)
    if (identifier is None) != (api_secret is None) or identifier == "" or api_secret == "":
        raise SandboxSetupError(why.gettext("--identifier and --secret-key go together (or "
                                            "pass neither to generate a credential)"))
    try:
        url = sa.engine.make_url(database_url)
    except sa.exc.ArgumentError:
        raise SandboxSetupError(why.gettext("--database-url is not a database URL (e.g. "
                                            "%(example)s)", example=SANDBOX_DATABASE_URL)) \
            from None
    forwarder: Forwarder | None = None
    hooks: str = why.gettext("recorded, not forwarded (pass --bridge-url and --secret to "
                             "forward them)")
    if target is not None:
        forwarder, hooks = _forwarder(url, *target, use_php=use_php)
    sandbox = Sandbox(database_url, fire=forwarder.fire if forwarder else None)
    try:
        seeded = seed_sandbox(sandbox) if seed and sandbox.is_empty() else []
        identifier, api_secret, credential = _credential(sandbox, identifier, api_secret)
    except BaseException:
        sandbox.dispose()
        raise
    return SandboxSetup(sandbox, identifier, api_secret, credential, seeded, hooks, forwarder)


def _bridge_target(bridge_url: str | None, webhook_secret: str | None) -> tuple[str, str] | None:
    if webhook_secret is not None:
        try:
            check_webhook_secret(webhook_secret)
        except ValueError as exc:
            raise SandboxSetupError(why.gettext("--secret is not a webhook secret: %(problem)s",
                                                problem=str(exc))) from None
    if bridge_url is None and webhook_secret is None:
        return None
    if not bridge_url or not webhook_secret:
        raise SandboxSetupError(why.gettext("--bridge-url and --secret go together"))
    parts = urlsplit(bridge_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or "@" in parts.netloc:
        raise SandboxSetupError(why.gettext("--bridge-url must be the bridge's base URL, like "
                                            "http://127.0.0.1:8080"))
    return bridge_url.strip().rstrip("/").removesuffix(HOOK_PATH), webhook_secret


def _forwarder(url: sa.engine.URL, bridge_url: str, webhook_secret: str, *,
               use_php: bool | None) -> tuple[Forwarder, str]:
    """The stub's folder sits next to the SQLite file (``whmcs-sandbox.db`` →
    ``whmcs-sandbox-php/``), its spool table in that same file, as in WHMCS's database."""
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        db_file = Path(str(url.database)).resolve()
        folder, spool_db = db_file.with_name(f"{db_file.stem}-php"), db_file
    else:
        folder = Path.cwd() / "whmcs-sandbox-php"
        spool_db = folder / "spool.db"
    if use_php is None:
        use_php = php_available()
    if use_php or spool_db.parent == folder:
        try:
            (folder / "includes" if use_php else folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SandboxSetupError(why.gettext("cannot create %(path)s: %(problem)s",
                                                path=str(folder),
                                                problem=exc.strerror or str(exc))) from None
    endpoint = bridge_url + HOOK_PATH
    if not use_php:
        return (PythonForwarder(endpoint, webhook_secret, spool_db),
                why.gettext("forwarded to %(endpoint)s through a Python emulation of the PHP "
                            "stub (install php-cli php-curl php-sqlite3 for the real one)",
                            endpoint=endpoint))
    try:
        stub = install_stub(folder, bridge_url, webhook_secret)[0]
    except StubInstallError as exc:
        raise SandboxSetupError(exc.args[0]) from None
    return (PhpForwarder(stub.parent, spool_db, folder / "module-log.jsonl"),
            why.gettext("forwarded to %(endpoint)s through the real PHP stub (%(stub)s)",
                        endpoint=endpoint, stub=str(stub)))


def _credential(sandbox: Sandbox, identifier: str | None,
                api_secret: str | None) -> tuple[str, str, str]:
    if identifier is None or api_secret is None:
        identifier, api_secret = secrets.token_hex(16), secrets.token_hex(16)
        sandbox.add_api_credential(identifier, api_secret, description="vipgate sandbox")
        return identifier, api_secret, "generated"
    if not sandbox.has_api_credential(identifier):
        sandbox.add_api_credential(identifier, api_secret, description="vipgate sandbox")
        return identifier, api_secret, "created"
    if sandbox.authenticate(identifier, api_secret) is None:
        raise SandboxSetupError(why.gettext("API identifier %(identifier)s already exists in "
                                            "this database with another secret (or was "
                                            "deleted); pass its secret or another --identifier",
                                            identifier=repr(identifier)))
    return identifier, api_secret, "existing"


def seed_sandbox(sandbox: Sandbox) -> list[str]:
    """A small readable dataset relative to the sandbox's today; returns lines describing it.

    Hooks do not fire while seeding: the data is the starting state, not events.
    """
    today = sandbox.today

    def ago(days: int) -> date:
        return today - timedelta(days=days)

    with sandbox.quiet():
        brl = sandbox.add_currency("BRL", "R$ ", "", default=True)
        vip = sandbox.add_group("VIP", susptermexempt=True, groupcolour="#28C99B")
        regular = sandbox.add_group("Clientes")
        suporte = sandbox.add_department("Suporte")
        sandbox.add_department("Financeiro")
        sandbox.add_product("Hospedagem Essencial", group="Hospedagem")

        def client(first: str, last: str, group: int, since: date, companyname: str = "") -> int:
            return sandbox.add_client(first, last, f"{first}.{last}@example.com".lower(),
                                      groupid=group, datecreated=since, currency=brl,
                                      companyname=companyname)

        def month(client_id: int, service: int, due: date, status: str = "Paid",
                  amount: str = "89.90") -> int:
            paid = f"{due - timedelta(days=1)} 10:00:00" if status == "Paid" else None
            return sandbox.add_invoice(
                client_id, due, [("Hosting", service, "Hospedagem Essencial", amount)],
                status=status, date=due - timedelta(days=7), datepaid=paid)

        ana = client("Ana", "Souza", vip, add_months(today, -60))
        bruno = client("Bruno", "Lima", vip, add_months(today, -36),
                       companyname="Lima Provedor Ltda")
        carla = client("Carla", "Reis", regular, add_months(today, -24))
        diego = client("Diego", "Alves", regular, add_months(today, -14))
        elisa = client("Elisa", "Castro", 0, add_months(today, -2))

        ana_due = ago(5)  # paid on time every month
        ana_service = sandbox.add_service(ana, add_months(ana_due, 1), "Monthly", "89.90",
                                          regdate=add_months(today, -60))
        for back in (2, 1, 0):
            month(ana, ana_service, add_months(ana_due, -back))
        bruno_due = ago(20)  # VIP, stopped paying: exempt, so never suspended
        bruno_service = sandbox.add_service(bruno, bruno_due, "Monthly", "249.90",
                                            regdate=add_months(today, -36))
        for back in (2, 1):
            month(bruno, bruno_service, add_months(bruno_due, -back), amount="249.90")
        overdue = month(bruno, bruno_service, bruno_due, "Unpaid", "249.90")
        carla_due = ago(2)  # paid by bank slip (boleto), waiting for the bank
        carla_service = sandbox.add_service(carla, carla_due, "Monthly", "59.90",
                                            regdate=add_months(today, -24))
        month(carla, carla_service, add_months(carla_due, -1), amount="59.90")
        pending = month(carla, carla_service, carla_due, "Payment Pending", "59.90")
        diego_service = sandbox.add_service(diego, add_months(ago(10), 1), "Monthly", "39.90",
                                            regdate=add_months(today, -14))
        month(diego, diego_service, ago(10), amount="39.90")
        elisa_due = today + timedelta(days=7)  # the next invoice, not due yet
        elisa_service = sandbox.add_service(elisa, elisa_due, "Monthly", "29.90",
                                            regdate=add_months(today, -2))
        month(elisa, elisa_service, add_months(elisa_due, -1), amount="29.90")
        upcoming = month(elisa, elisa_service, elisa_due, "Unpaid", "29.90")
        ticket = sandbox.open_ticket(bruno, suporte, "Site fora do ar", "High",
                                     "Meu site está fora do ar desde ontem. Urgente!")
    return [
        why.gettext("currency BRL (id %(currency)s, default); groups VIP (id %(vip)s, exempt "
                    "from suspension), Clientes (id %(regular)s); departments Suporte, "
                    "Financeiro", currency=brl, vip=vip, regular=regular),
        why.gettext("client %(id)s %(name)s (%(group)s): every invoice paid", id=ana,
                    name="Ana Souza", group="VIP"),
        why.gettext("client %(id)s %(name)s (%(group)s): invoice %(invoice)s overdue since "
                    "%(due)s; open ticket %(ticket)s '%(subject)s'", id=bruno,
                    name="Bruno Lima", group="VIP", invoice=overdue, due=bruno_due,
                    ticket=str(ticket.tid), subject="Site fora do ar"),
        why.gettext("client %(id)s %(name)s (%(group)s): invoice %(invoice)s Payment Pending",
                    id=carla, name="Carla Reis", group="Clientes", invoice=pending),
        why.gettext("client %(id)s %(name)s (%(group)s): every invoice paid", id=diego,
                    name="Diego Alves", group="Clientes"),
        why.gettext("client %(id)s %(name)s (no group): invoice %(invoice)s due %(due)s",
                    id=elisa, name="Elisa Castro", invoice=upcoming, due=elisa_due),
    ]


def banner(setup: SandboxSetup, url: str, database_url: str,
           texts: Texts | None = None) -> list[str]:
    """What ``vipgate sandbox`` prints once the port is bound (``url``: WHMCS base URL), in
    the language of ``texts`` (English by default); the seeded data as its lines."""
    t = texts or Texts("en")
    where = shown_url(database_url)
    ips = ", ".join(php_unserialize_ips(setup.sandbox.setting("APIAllowedIPs"))) \
        or t.gettext("none")
    lines = [t.gettext("vipgate sandbox: WHMCS API at %(url)s", url=url + "/includes/api.php"),
             "  " + t.gettext("database %(where)s", where=where)]
    if setup.seeded:
        lines += ["  " + t.gettext("seeded a new database:"),
                  *(f"    {render_reason(line, t.language)}" for line in setup.seeded)]
    credential = {"generated": t.gettext("API credential (generated): identifier "
                                         "%(identifier)s, secret %(secret)s"),
                  "created": t.gettext("API credential (created): identifier %(identifier)s, "
                                       "secret %(secret)s"),
                  "existing": t.gettext("API credential (existing): identifier "
                                        "%(identifier)s, secret %(secret)s")}[setup.credential]
    lines += [
        "  " + credential % {"identifier": setup.identifier, "secret": setup.secret},
        "  " + t.gettext("API calls accepted from %(ips)s (WHMCS's API IP allow-list)", ips=ips),
        "  " + t.gettext("hooks: %(where)s", where=render_reason(setup.hooks, t.language)),
        "",
        t.gettext("Paste into vipgate.ini:"),
        "",
        *setup.whmcs_ini(url),
        "",
        t.gettext("Ctrl-C stops the sandbox."),
    ]
    return lines

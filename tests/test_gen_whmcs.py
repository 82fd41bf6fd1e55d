"""bench/gen_whmcs.py: a WHMCS-shaped dataset that the sandbox can read."""

from __future__ import annotations

import hashlib
import importlib.util
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa

from bridge.sandbox.schema import make_whmcs_engine
from bridge.sandbox.whmcs import Sandbox
from bridge.whmcs.schema import (
    tblaccounts,
    tblclientgroups,
    tblclients,
    tblhosting,
    tblinvoices,
    tblproducts,
    tbltickets,
)

GEN_PATH = Path(__file__).resolve().parents[1] / "bench" / "gen_whmcs.py"
TODAY = date(2026, 11, 21)
ACTIVE_TICKET_STATUSES = ("Open", "Answered", "Customer-Reply", "In Progress")


def _load_gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_whmcs", GEN_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_gen()


def _scalar(conn: sa.Connection, query: sa.Select) -> int:
    return int(conn.execute(query).scalar() or 0)


def _check_dataset(url: str, clients: int, counts: dict[str, int]) -> None:
    """Plausible shares, counts as written, and the sandbox reads it."""
    count = sa.func.count()
    i, h, t, c, a = tblinvoices.c, tblhosting.c, tbltickets.c, tblclients.c, tblaccounts.c
    engine = make_whmcs_engine(url)
    try:
        with engine.connect() as conn:
            for name in ("tblclients", "tblinvoices", "tblinvoiceitems", "tblaccounts",
                         "tblhosting", "tbltickets"):
                table = sa.table(name)
                assert _scalar(conn, sa.select(count).select_from(table)) == counts[name], name
            assert counts["tblclients"] == clients
            assert 5 * clients <= counts["tblinvoices"] <= 15 * clients
            assert counts["tblinvoiceitems"] == counts["tblinvoices"]
            assert clients <= counts["tblhosting"] <= 1.5 * clients
            overdue = _scalar(conn, sa.select(sa.func.count(i.userid.distinct())).where(
                i.status == "Unpaid", i.duedate < TODAY))
            assert 0.03 * clients <= overdue <= 0.15 * clients
            assert _scalar(conn, sa.select(count).where(
                i.status == "Payment Pending", i.duedate < TODAY)) > 0
            suspended = _scalar(conn, sa.select(count).where(
                h.domainstatus == "Suspended", h.suspendreason == ""))
            assert 0 < suspended <= 0.08 * clients
            manual = _scalar(conn, sa.select(count).select_from(tblhosting.join(
                tblproducts, tblproducts.c.id == h.packageid)).where(
                h.domainstatus == "Suspended", tblproducts.c.servertype == ""))
            assert manual == 0  # WHMCS's cron suspends only services with a module
            active = _scalar(conn, sa.select(count).where(t.status.in_(ACTIVE_TICKET_STATUSES)))
            assert 0.05 * clients <= active <= 0.5 * clients
            assert _scalar(conn, sa.select(count).where(t.userid <= 0)) == 0
            assert _scalar(conn, sa.select(count).where(t.status == "Closed")) > 0
            assert _scalar(conn, sa.select(count).where(t.did == 2)) > 0
            vip = _scalar(conn, sa.select(count).where(c.groupid == 2))
            assert 0.03 * clients <= vip <= 0.2 * clients
            assert conn.execute(sa.select(tblclientgroups.c.susptermexempt).where(
                tblclientgroups.c.id == 2)).scalar() == "on"
            # every Paid invoice is paid in full by its tblaccounts rows
            paid = (sa.select(a.invoiceid, sa.func.sum(a.amountin - a.amountout).label("paid"))
                    .group_by(a.invoiceid).subquery())
            assert _scalar(conn, sa.select(count).select_from(
                tblinvoices.outerjoin(paid, paid.c.invoiceid == i.id)).where(
                i.status == "Paid", sa.func.coalesce(paid.c.paid, 0) != i.total)) == 0
            partial = conn.execute(sa.select(i.id, i.total).select_from(
                tblinvoices.join(paid, paid.c.invoiceid == i.id)).where(
                i.status == "Unpaid", i.duedate < TODAY).order_by(i.id)).first()
            assert partial is not None
    finally:
        engine.dispose()
    sandbox = Sandbox(url)
    try:
        balance = sandbox.balance(partial.id)
        assert Decimal("0") < balance < Decimal(str(partial.total))
        invoice = sandbox.invoice(partial.id)
        assert invoice is not None and invoice["datepaid"] is None  # the zero date
    finally:
        sandbox.engine.dispose()


def _digest(url: str) -> str:
    engine = make_whmcs_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(tblinvoices).order_by(tblinvoices.c.id)).all()
    finally:
        engine.dispose()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_sqlite_dataset_is_plausible_and_readable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/whmcs.db"
    counts = gen.generate(url, 300, seed=7, today=TODAY)
    _check_dataset(url, 300, counts)


def test_same_seed_same_rows(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path}/{n}.db" for n in range(3)]
    gen.generate(urls[0], 60, seed=3, today=TODAY)
    gen.generate(urls[1], 60, seed=3, today=TODAY)
    gen.generate(urls[2], 60, seed=4, today=TODAY)
    assert _digest(urls[0]) == _digest(urls[1]) != _digest(urls[2])


def test_refuses_a_database_not_named_bench_or_test(capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    assert gen.main(["--clients", "1", "--url",
                     "mysql+pymysql://root@127.0.0.1:3306/whmcs"]) == 2
    err = capsys.readouterr().err
    assert "refusing" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(gen.Refused):
        gen.generate("mysql+pymysql://root@127.0.0.1:3306/whmcs", 1, today=TODAY)


@pytest.mark.mariadb
def test_mariadb_dataset(mariadb_server: str) -> None:
    name = f"vipgate_test_gen_{uuid.uuid4().hex[:12]}"
    url = f"{mariadb_server}/{name}"
    try:
        counts = gen.generate(url, 200, seed=5, today=TODAY)
        _check_dataset(url, 200, counts)
        engine = sa.create_engine(url)
        try:
            inspector = sa.inspect(engine)
            for table in gen.BIG_TABLES:
                have = {index["name"] for index in inspector.get_indexes(table.name)}
                assert {index.name for index in table.indexes} <= have, table.name
        finally:
            engine.dispose()
    finally:
        admin = sa.create_engine(mariadb_server + "/")
        try:
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        finally:
            admin.dispose()

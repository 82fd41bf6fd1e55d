"""The sandbox WHMCS's behaviour: the daily cron (suspension after AutoSuspensionDays unless
exempt, invoice generation with and without Continuous Invoice Generation), payments
(partial ones included) and unsuspension on payment, and the clock."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.sandbox.clock import SandboxClock, add_months, next_cycle
from bridge.sandbox.whmcs import Sandbox
from tests.helpers import Recorder

NOW = datetime(2026, 11, 21, 9, 0, 0)
TODAY = NOW.date()




@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="session")
def blank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty WHMCS database (default rows, one product and server), built once."""
    path = tmp_path_factory.mktemp("whmcs-blank") / "whmcs.db"
    sandbox = Sandbox(f"sqlite:///{path}")
    sandbox.add_product()
    sandbox.add_server()
    sandbox.dispose()
    return path


@pytest.fixture
def sandbox(tmp_path: Path, blank: Path, recorder: Recorder) -> Iterator[Sandbox]:
    shutil.copy(blank, tmp_path / "whmcs.db")
    sandbox = Sandbox(f"sqlite:///{tmp_path}/whmcs.db", fire=recorder,
                      clock=SandboxClock(NOW), seed=3)
    yield sandbox
    sandbox.dispose()


@dataclass(frozen=True)
class Account:
    client: int
    service: int
    invoice: int


def overdue(sandbox: Sandbox, recorder: Recorder, days: int, *, groupid: int = 0,
            amount: str = "50.00", **service: Any) -> Account:
    """A client whose monthly service (and its unpaid invoice) fell due ``days`` ago."""
    due = TODAY - timedelta(days=days)
    with sandbox.quiet():
        client = sandbox.add_client("Client", f"Overdue{days}", groupid=groupid)
        service_id = sandbox.add_service(client, due, "Monthly", amount, **service)
        invoice = sandbox.add_invoice(client, due, [("Hosting", service_id, "Plan", amount)])
    recorder.calls.clear()
    return Account(client, service_id, invoice)


def status(sandbox: Sandbox, service_id: int) -> tuple[str, str]:
    row = sandbox.service(service_id)
    assert row is not None
    return row["domainstatus"], row["suspendreason"]


# --- overdue suspensions -------------------------------------------------------------------


def test_cron_suspends_overdue_services_except_exempt_group_and_logs(
        sandbox: Sandbox, recorder: Recorder) -> None:
    vip = sandbox.add_group("VIP", susptermexempt=True)
    regular = sandbox.add_group("Regular")
    ana = overdue(sandbox, recorder, 11, groupid=vip)
    bruno = overdue(sandbox, recorder, 11, groupid=regular)
    carla = overdue(sandbox, recorder, 2)
    summary = sandbox.run_cron()
    assert (summary.suspended, summary.spared_exempt_group) == ([bruno.service], [ana.service])
    assert status(sandbox, bruno.service) == ("Suspended", "")  # WHMCS 8: no reason stored
    assert status(sandbox, ana.service) == ("Active", "")
    assert status(sandbox, carla.service) == ("Active", "")
    assert recorder.names() == ["PreCronJob", "AfterModuleSuspend", "DailyCronJob",
                                "AfterCronJob"]
    assert summary.hooks == recorder.names()
    params = recorder.vars("AfterModuleSuspend")[0]["params"]
    assert (params["serviceid"], params["userid"], params["status"],
            params["suspendreason"]) == (bruno.service, bruno.client, "Suspended", "")
    assert "password" in params and "serverpassword" in params  # the stub must strip them
    assert sandbox.activity(bruno.client) == [
        f"Cron Job: Suspending Service - Service ID: {bruno.service}"]
    assert "Automated Task: Starting Overdue Suspensions" in sandbox.activity(0)
    assert sandbox.activity(ana.client) == []


@pytest.mark.parametrize(("days", "expected"), [
    (0, "Active"), (4, "Active"), (5, "Suspended"), (6, "Suspended"), (60, "Suspended")])
def test_suspension_once_auto_suspension_days_have_passed_the_boundary_day_included(
        sandbox: Sandbox, recorder: Recorder, days: int, expected: str) -> None:
    account = overdue(sandbox, recorder, days)
    sandbox.run_cron()
    assert status(sandbox, account.service)[0] == expected


def test_auto_suspension_days_is_read_from_tblconfiguration(sandbox: Sandbox,
                                                            recorder: Recorder) -> None:
    account = overdue(sandbox, recorder, 4)
    sandbox.configure(AutoSuspensionDays=3)
    assert sandbox.run_cron().suspended == [account.service]


def test_a_service_without_a_provisioning_module_needs_manual_suspension(
        sandbox: Sandbox, recorder: Recorder) -> None:
    """WHMCS suspends through the product's module; without one (``servertype`` empty) the
    cron only logs "Manual Suspension Required": the service stays Active, no hook fires."""
    manual = sandbox.add_product("Link Dedicado", group="Internet", servertype="")
    account = overdue(sandbox, recorder, 11, product=manual)
    hosted = overdue(sandbox, recorder, 11)
    summary = sandbox.run_cron()
    assert (summary.suspended, summary.manual_required) == ([hosted.service],
                                                            [account.service])
    assert status(sandbox, account.service) == ("Active", "")
    assert [p["params"]["serviceid"] for p in recorder.vars("AfterModuleSuspend")] == [
        hosted.service]
    assert sandbox.activity(account.client) == [
        f"Cron Job: Manual Suspension Required - Service ID: {account.service}"]


@pytest.mark.parametrize(("statuses", "expected"), [
    (("Payment Pending",), "Active"),
    (("Unpaid", "Payment Pending"), "Active"),
    (("Payment Pending", "Unpaid"), "Suspended"),  # only the latest invoice counts
    (("Collections",), "Suspended"),
], ids=["pending", "latest-pending", "older-pending", "collections"])
def test_a_service_whose_latest_invoice_is_payment_pending_is_not_suspended(
        sandbox: Sandbox, recorder: Recorder, statuses: tuple[str, ...],
        expected: str) -> None:
    account = overdue(sandbox, recorder, 11)
    sandbox.set_invoice_status(account.invoice, statuses[0])
    for later in statuses[1:]:
        with sandbox.quiet():
            sandbox.add_invoice(account.client, TODAY - timedelta(days=6),
                                [("Hosting", account.service, "Plan", "50.00")], later)
    summary = sandbox.run_cron()
    assert status(sandbox, account.service)[0] == expected
    assert summary.spared_pending == ([account.service] if expected == "Active" else [])


def test_an_overdue_suspension_with_its_empty_reason_is_undone_by_payment(
        sandbox: Sandbox, recorder: Recorder) -> None:
    account = overdue(sandbox, recorder, 11)
    sandbox.run_cron()
    assert status(sandbox, account.service) == ("Suspended", "")
    sandbox.add_payment(account.invoice)
    assert status(sandbox, account.service) == ("Active", "")


def test_auto_suspension_off_suspends_nothing(sandbox: Sandbox, recorder: Recorder) -> None:
    account = overdue(sandbox, recorder, 30)
    sandbox.configure(AutoSuspension=False)
    summary = sandbox.run_cron()
    assert summary.suspended == [] and status(sandbox, account.service)[0] == "Active"
    assert summary.hooks == ["PreCronJob", "DailyCronJob", "AfterCronJob"]


@pytest.mark.parametrize(("override", "until", "expected"), [
    (True, None, "Active"),
    (True, TODAY + timedelta(days=3), "Active"),
    (True, TODAY, "Active"),
    (True, TODAY - timedelta(days=1), "Suspended"),
    (False, TODAY + timedelta(days=3), "Suspended"),
])
def test_per_service_override_spares_until_its_date(sandbox: Sandbox, recorder: Recorder,
                                                    override: bool, until: date | None,
                                                    expected: str) -> None:
    account = overdue(sandbox, recorder, 20, overideautosuspend=override,
                      overidesuspenduntil=until)
    summary = sandbox.run_cron()
    assert status(sandbox, account.service)[0] == expected
    assert summary.spared_override == ([account.service] if expected == "Active" else [])


@pytest.mark.parametrize(("service", "expected"), [
    ({"status": "Pending"}, ("Pending", "")),
    ({"status": "Terminated"}, ("Terminated", "")),
    ({"status": "Suspended", "suspendreason": "Abuse"}, ("Suspended", "Abuse")),
    ({"billingcycle": "Free Account"}, ("Active", "")),
    ({"billingcycle": "One Time"}, ("Active", "")),
])
def test_cron_leaves_non_active_and_non_recurring_services_alone(
        sandbox: Sandbox, recorder: Recorder, service: dict[str, str],
        expected: tuple[str, str]) -> None:
    client = sandbox.add_client()
    service_id = sandbox.add_service(client, TODAY - timedelta(days=40),
                                     service.pop("billingcycle", "Monthly"), "10.00", **service)
    assert sandbox.run_cron().suspended == []
    assert status(sandbox, service_id) == expected


def test_pre_cron_job_runs_first_and_its_changes_are_seen(sandbox: Sandbox,
                                                          recorder: Recorder) -> None:
    """vipgate's synchronous PreCronJob reconcile moves a delinquent client out of the exempt
    group; the suspension step then sees the client's new group."""
    vip = sandbox.add_group("VIP", susptermexempt=True)
    account = overdue(sandbox, recorder, 11, groupid=vip)

    def leave_vip(_vars: dict[str, Any]) -> list[Any]:
        sandbox.update_client(account.client, groupid=0)
        return []

    recorder.answers["PreCronJob"] = leave_vip
    summary = sandbox.run_cron()
    assert summary.suspended == [account.service]
    assert recorder.names() == ["PreCronJob", "ClientEdit", "AfterModuleSuspend",
                                "DailyCronJob", "AfterCronJob"]
    assert summary.hooks == recorder.names()


def test_a_second_run_the_same_day_changes_nothing(sandbox: Sandbox,
                                                   recorder: Recorder) -> None:
    account = overdue(sandbox, recorder, 11)
    assert sandbox.run_cron().suspended == [account.service]
    again = sandbox.run_cron()
    assert (again.suspended, again.invoices_created) == ([], [])
    assert again.as_dict()["ran_at"] == "2026-11-21 09:00:00"


# --- payments and unsuspension ---------------------------------------------------------------


@pytest.mark.parametrize(("reason", "unsuspended"), [
    ("Overdue on Payment", True), ("", True), ("Abuse", False), ("Cliente pediu", False)])
def test_payment_unsuspends_only_overdue_suspensions(sandbox: Sandbox, recorder: Recorder,
                                                     reason: str, unsuspended: bool) -> None:
    account = overdue(sandbox, recorder, 11, status="Suspended", suspendreason=reason)
    assert sandbox.add_payment(account.invoice) == 0
    if unsuspended:
        assert status(sandbox, account.service) == ("Active", "")
        assert recorder.names() == ["AddInvoicePayment", "AfterModuleUnsuspend",
                                    "InvoicePaid"]
        params = recorder.vars("AfterModuleUnsuspend")[0]["params"]
        assert (params["serviceid"], params["status"]) == (account.service, "Active")
        assert params["password"] and params["serverpassword"]
    else:
        assert status(sandbox, account.service) == ("Suspended", reason)
        assert recorder.names() == ["AddInvoicePayment", "InvoicePaid"]
    service = sandbox.service(account.service)
    assert service is not None and service["nextduedate"] == date(2026, 12, 10)


def test_auto_unsuspend_off_keeps_the_service_suspended(sandbox: Sandbox,
                                                        recorder: Recorder) -> None:
    account = overdue(sandbox, recorder, 11, status="Suspended",
                      suspendreason="Overdue on Payment")
    sandbox.configure(AutoUnsuspend=False)
    sandbox.add_payment(account.invoice)
    assert status(sandbox, account.service) == ("Suspended", "Overdue on Payment")
    assert "AfterModuleUnsuspend" not in recorder.names()


def test_partial_payments_keep_the_invoice_unpaid_until_the_balance_is_zero(
        sandbox: Sandbox, recorder: Recorder) -> None:
    account = overdue(sandbox, recorder, 11, amount="89.90")
    sandbox.run_cron()
    recorder.calls.clear()
    assert sandbox.add_payment(account.invoice, "40.00") == Decimal("49.90")
    assert sandbox.add_payment(account.invoice, "40.00") == Decimal("9.90")
    invoice = sandbox.invoice(account.invoice)
    assert invoice is not None and (invoice["status"], invoice["datepaid"]) == ("Unpaid", None)
    assert status(sandbox, account.service)[0] == "Suspended"
    assert recorder.names() == ["AddInvoicePayment", "AddInvoicePayment"]
    sandbox.advance(hours=2)
    assert sandbox.add_payment(account.invoice, "9.90") == 0
    invoice = sandbox.invoice(account.invoice)
    assert invoice is not None
    assert (invoice["status"], invoice["datepaid"]) == ("Paid", datetime(2026, 11, 21, 11, 0))
    assert status(sandbox, account.service) == ("Active", "")
    assert recorder.names()[2:] == ["AddInvoicePayment", "AfterModuleUnsuspend",
                                    "InvoicePaid"]
    sandbox.add_payment(account.invoice, "1.00")  # an overpayment is one more payment only
    assert recorder.names()[-1] == "AddInvoicePayment"
    assert recorder.names().count("InvoicePaid") == 1
    assert sandbox.run_cron().suspended == []  # renewed to 2026-12-10: not overdue


@pytest.mark.parametrize(("cycle", "due", "expected"), [
    ("Monthly", date(2026, 1, 31), date(2026, 2, 28)),
    ("Monthly", date(2026, 12, 15), date(2027, 1, 15)),
    ("Quarterly", date(2026, 11, 10), date(2027, 2, 10)),
    ("Semi-Annually", date(2026, 8, 31), date(2027, 2, 28)),
    ("Annually", date(2024, 2, 29), date(2025, 2, 28)),
    ("Biennially", date(2026, 5, 1), date(2028, 5, 1)),
    ("Triennially", date(2026, 5, 1), date(2029, 5, 1)),
    ("Free Account", date(2026, 5, 1), date(2026, 5, 1)),
])
def test_next_due_date_moves_by_the_billing_cycle(cycle: str, due: date,
                                                  expected: date) -> None:
    assert next_cycle(due, cycle) == expected


def test_paying_a_quarterly_hosting_item_renews_by_a_quarter(sandbox: Sandbox) -> None:
    client = sandbox.add_client()
    service = sandbox.add_service(client, "2026-11-10", "Quarterly", "120.00")
    invoice = sandbox.add_invoice(client, "2026-11-10", [("Hosting", service, "Q", "120.00")])
    sandbox.add_payment(invoice)
    row = sandbox.service(service)
    assert row is not None
    assert (row["nextduedate"], row["nextinvoicedate"]) == (date(2027, 2, 10),
                                                            date(2027, 2, 10))


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert add_months(date(2026, 12, 31), 2) == date(2027, 2, 28)


# --- invoice generation -----------------------------------------------------------------------


def test_cron_invoices_a_service_due_within_create_invoice_days_before_once(
        sandbox: Sandbox, recorder: Recorder) -> None:
    client = sandbox.add_client()
    soon = sandbox.add_service(client, TODAY + timedelta(days=10), "Monthly", "25.00")
    sandbox.add_service(client, TODAY + timedelta(days=20), "Monthly", "25.00")
    recorder.calls.clear()
    summary = sandbox.run_cron()
    [invoice_id] = summary.invoices_created
    invoice = sandbox.invoice(invoice_id)
    assert invoice is not None
    assert (invoice["duedate"], invoice["status"], str(invoice["total"])) == (
        TODAY + timedelta(days=10), "Unpaid", "25.00")
    assert recorder.vars("InvoiceCreated") == [{"source": "autogen", "user": "system",
                                                "invoiceid": invoice_id, "status": "Unpaid"}]
    assert recorder.names() == ["PreCronJob", "InvoiceCreation", "InvoiceCreated",
                                "DailyCronJob", "AfterCronJob"]
    assert sandbox.run_cron().invoices_created == []
    assert sandbox.service(soon)["nextduedate"] == TODAY + timedelta(days=10)  # type: ignore


@pytest.mark.parametrize(("continuous", "created"), [(False, 0), (True, 1)])
def test_continuous_invoice_generation_decides_invoices_while_one_is_unpaid(
        sandbox: Sandbox, recorder: Recorder, continuous: bool, created: int) -> None:
    """The seed story: with CIG off an overdue client never receives the next invoice."""
    account = overdue(sandbox, recorder, 11)  # due 2026-11-10, unpaid; next period 12-10
    sandbox.configure(ContinuousInvoiceGeneration=continuous)
    sandbox.advance(days=6)  # 2026-11-27 + 14 days reaches 2026-12-10
    summary = sandbox.run_cron()
    assert len(summary.invoices_created) == created
    if created:
        invoice = sandbox.invoice(summary.invoices_created[0])
        assert invoice is not None and invoice["duedate"] == date(2026, 12, 10)
        service = sandbox.service(account.service)
        assert service is not None and service["nextinvoicedate"] == date(2027, 1, 10)
    assert len(sandbox.run_cron().invoices_created) == 0


def test_without_cig_the_next_invoice_comes_after_payment(sandbox: Sandbox,
                                                         recorder: Recorder) -> None:
    account = overdue(sandbox, recorder, 11)
    sandbox.advance(days=6)
    assert sandbox.run_cron().invoices_created == []
    sandbox.add_payment(account.invoice)
    [invoice_id] = sandbox.run_cron().invoices_created
    assert sandbox.invoice(invoice_id)["duedate"] == date(2026, 12, 10)  # type: ignore


def test_terminated_and_far_future_services_are_not_invoiced(sandbox: Sandbox) -> None:
    client = sandbox.add_client()
    sandbox.add_service(client, TODAY + timedelta(days=2), status="Terminated")
    sandbox.add_service(client, TODAY + timedelta(days=90))
    assert sandbox.run_cron().invoices_created == []


# --- the clock -------------------------------------------------------------------------------


def test_clock_is_fixed_and_moves_only_when_told() -> None:
    clock = SandboxClock(datetime(2026, 11, 21, 23, 30))
    assert clock.now == clock() == datetime(2026, 11, 21, 23, 30)
    clock.advance(hours=1)
    assert clock.today == date(2026, 11, 22)
    clock.set(datetime(2027, 1, 1, 8, 0))
    assert clock.now == datetime(2027, 1, 1, 8, 0)


def test_clock_follows_a_utc_source_in_the_whmcs_timezone() -> None:
    source = [datetime(2026, 11, 21, 2, 0, tzinfo=UTC)]
    clock = SandboxClock(source=lambda: source[0], timezone="America/Sao_Paulo")
    assert clock.now == datetime(2026, 11, 20, 23, 0)  # UTC-3, naive local
    clock.advance(days=1)
    source[0] += timedelta(hours=2)
    assert clock.now == datetime(2026, 11, 22, 1, 0)
    assert clock.aware.utcoffset() == timedelta(hours=-3)


def test_sandbox_accepts_a_start_datetime_as_clock(tmp_path: Path) -> None:
    sandbox = Sandbox(f"sqlite:///{tmp_path}/w.db", clock=datetime(2026, 1, 2, 3, 4))
    try:
        assert sandbox.today == date(2026, 1, 2)
        sandbox.advance(days=1)
        assert sandbox.now == datetime(2026, 1, 3, 3, 4)
    finally:
        sandbox.dispose()


# --- the same cron on MariaDB ------------------------------------------------------------------


def test_cron_suspension_rules_on_each_database(database_url: str) -> None:
    recorder = Recorder()
    sandbox = Sandbox(database_url, fire=recorder, clock=SandboxClock(NOW), seed=3)
    try:
        vip = sandbox.add_group("VIP", susptermexempt=True)
        exempt = overdue(sandbox, recorder, 11, groupid=vip)
        plain = overdue(sandbox, recorder, 11)
        expired = overdue(sandbox, recorder, 11, overideautosuspend=True,
                          overidesuspenduntil=TODAY - timedelta(days=1))
        forever = overdue(sandbox, recorder, 11, overideautosuspend=True)
        summary = sandbox.run_cron()
        assert summary.suspended == [plain.service, expired.service]
        assert (summary.spared_exempt_group, summary.spared_override) == (
            [exempt.service], [forever.service])
        sandbox.add_payment(plain.invoice, "10.00")
        assert status(sandbox, plain.service)[0] == "Suspended"
        sandbox.add_payment(plain.invoice)
        assert status(sandbox, plain.service) == ("Active", "")
    finally:
        sandbox.dispose()

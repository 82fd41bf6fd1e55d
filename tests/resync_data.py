"""A varied WHMCS for resync tests, built through the sandbox's own admin actions (quietly:
the data is the starting state, not events)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

from bridge.sandbox.whmcs import Sandbox


@dataclass
class Population:
    clients: list[int] = field(default_factory=list)
    vip_owing: list[int] = field(default_factory=list)  # in VIP, overdue past the grace
    collections: list[int] = field(default_factory=list)  # in VIP, owing a Collections invoice
    tickets: list[int | None] = field(default_factory=list)


def populate(sandbox: Sandbox, *, vip: int, regular: int, support: int, billing: int,
             count: int = 40, seed: int = 7) -> Population:
    rnd = random.Random(seed)
    today = sandbox.today
    made = Population()
    with sandbox.quiet():
        for n in range(count):
            kind = n % 10
            group = vip if kind in (0, 1, 2, 6) else (regular if kind % 2 else 0)
            client = sandbox.add_client("Client", f"N{n}", groupid=group,
                                        datecreated=today - timedelta(days=400 + 13 * n),
                                        language="portuguese-br" if n % 3 else "")
            made.clients.append(client)
            service = sandbox.add_service(client, today + timedelta(days=10))
            item = [("Hosting", service, "Hosting", "89.90")]
            for month in range(1, 6):  # paid history, some paid late
                due = today - timedelta(days=30 * month + 5)
                late = 12 if (kind == 3 and month == 2) else rnd.randint(0, 3)
                sandbox.add_invoice(client, due, item, "Paid", date=due - timedelta(days=7),
                                    datepaid=due + timedelta(days=late))
            if kind in (0, 4, 6, 7, 9):  # overdue past the grace
                due = today - timedelta(days=rnd.randint(5, 40))
                invoice = sandbox.add_invoice(client, due, item)
                if kind == 6:
                    sandbox.add_payment(invoice, "30.00", transid=f"part-{n}")
                if kind in (0, 6) and group == vip:
                    made.vip_owing.append(client)
            if kind == 1:  # part paid, then handed to collections (UpdateInvoice: no hook)
                invoice = sandbox.add_invoice(client, today - timedelta(days=45 + n), item)
                sandbox.add_payment(invoice, "20.00", transid=f"coll-{n}")
                sandbox.update_invoice(invoice, status="Collections")
                made.collections.append(client)
                made.vip_owing.append(client)
            if kind == 5:  # within the grace
                sandbox.add_invoice(client, today - timedelta(days=1), item)
            if kind == 8:  # Payment Pending past due
                sandbox.add_invoice(client, today - timedelta(days=4), item, "Payment Pending")
            if kind == 9:
                sandbox.suspend_service(service, "Overdue on Payment")
            sandbox.add_invoice(client, today + timedelta(days=7), item)  # not due yet
            if n % 2 == 0:
                dept = billing if n % 6 == 0 else support
                made.tickets.append(sandbox.open_ticket(client, dept, f"Help {n}",
                                                        rnd.choice(["Low", "Medium", "High"]),
                                                        admin=True).ticket_id)
    return made

"""``vipgate demo``: the seed story (DESIGN.md), played day by day on embedded defaults.

A sandbox WHMCS and the bridge, each on SQLite in a throw-away folder and served over HTTP;
hooks fired through the real PHP stub (installed as the addon module) when ``php`` is
installed, else through its Python emulation; a worker drains the inbox after each step. The
VIP group holds old clients, friends and big clients; some stop paying, leave VIP before the
cron suspends them, pay (one only in part at first) and come back; their tickets are lowered,
noted, gated and restored; staff overrides are followed. Every claim is checked (✓/✗). The
last day stops the bridge to show events spooled in WHMCS's database and flushed by the next
cron run, and a forged request refused. The story ends with the recovery figures of its
days (the dashboard's Recovery section), checked against what its clients paid.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal

import requests

from bridge import accounts, days, first_run
from bridge.demo.installation import (
    API_ID,
    API_SECRET,
    Bill,
    Installation,
    Narrator,
    Person,
    add_person,
    day_name,
    install,
    make_workdir,
)
from bridge.i18n import N_, Texts
from bridge.policy.episodes import PAID_UP, SUSPENDED
from bridge.policy.state import Membership
from bridge.policy.vip import eligible
from bridge.sandbox.forwarder import php_available
from bridge.store import snapshots

START = datetime(2026, 11, 2, 9, 0)  # a Monday, 09:00 in São Paulo: WHMCS's daily cron hour


class Story:
    """The seed story, one method per simulated day, told in the narrator's language."""

    def __init__(self, site: Installation, n: Narrator) -> None:
        self.site, self.n, self.s, self.t = site, n, site.sandbox, n.t
        self.cast: dict[str, Person] = {}
        self.vip = site.groups["VIP"]

    # --- helpers ----------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Person:
        return self.cast[key]

    def at(self, day: int, hhmm: str, text: str) -> None:
        hour, minute = (int(part) for part in hhmm.split(":"))
        self.s.clock.set(datetime.combine(START.date() + timedelta(days=day),
                                          clock_time(hour, minute)))
        self.n.say(f"{hhmm} {text}")

    def morning(self, day: int, suspended: dict[int, str] | None = None) -> None:
        """The day's header and WHMCS's daily cron; ``suspended``: service → owner expected."""
        _ = self.t.gettext
        today = START.date() + timedelta(days=day)
        if day > 0:
            self.midnight(day)
        self.n.say()
        self.n.say("── " + _("day %(day)s · %(date)s", day=day,
                             date=day_name(today, self.t.language)) + " " + "─" * 50)
        self.at(day, "09:00", _("WHMCS's daily cron: PreCronJob first (vipgate reconciles "
                                "everyone), then suspensions"))
        summary = self.s.run_cron()
        self.n.report(self.site.store.audit_log(since_id=self.n.seen_audit))
        self.n.cron(summary, suspended or {})
        self.n.settle()

    def midnight(self, day: int) -> None:
        """The worker's looks for a day to close (once a minute while it runs: here at 23:59
        and at midnight) close the day before: its dashboard figures become final."""
        settings = self.site.settings
        for moment in (datetime.combine(START.date() + timedelta(days=day - 1),
                                        clock_time(23, 59)),
                       datetime.combine(START.date() + timedelta(days=day), clock_time(0, 0))):
            self.s.clock.set(moment)
            snapshots.close_days(self.site.store, self.s.clock.aware,
                                 settings.policy.vip_group_id,
                                 timezone=settings.bridge.timezone)

    def group_is(self, key: str, group: str, claim: str) -> None:
        self.n.group_is(self[key].id, group, claim)

    def priorities_are(self, key: str, wanted: list[str], claim: str) -> None:
        self.n.priorities_are(self[key].tickets, wanted, claim)

    def money(self, amount: Decimal | str) -> str:
        return self.n.money(amount)

    def intro(self) -> None:
        site, n, _ = self.site, self.n, self.t.gettext
        policy = site.settings.policy
        how = (_("the real PHP stub (run by php), installed as WHMCS's addon module "
                 "(install-stub --addon, activated and configured in Setup > Addon Modules)")
               if site.forwarder.kind == "php" else
               _("a Python emulation of the stub (--stub python)") if php_available() else
               _("a Python emulation of the stub: php with curl and pdo_sqlite is not "
                 "installed"))
        suspension = int(self.s.setting("AutoSuspensionDays"))
        n.say(_("vipgate demo: the seed story, day by day, on embedded defaults"))
        n.say("  " + _("sandbox WHMCS %(whmcs)s and bridge %(bridge)s, both on SQLite in "
                       "%(folder)s", whmcs=site.whmcs.url, bridge=site.bridge.url,
                       folder=site.workdir))
        n.say("  " + _("hooks fired through %(how)s", how=how))
        n.say("  " + _("policy: grace %(grace)s days (WHMCS AutoSuspensionDays %(days)s); VIP "
                       "group exempt from suspension; default group Clientes;",
                       grace=policy.grace_days, days=suspension))
        n.say("    " + (_("VIP is whoever the owner put there (adopted as pinned); promotion by "
                          "rules is on (promote_by_rules)") if policy.promote_by_rules else
                        _("VIP is whoever the owner put there (adopted as pinned); promotion by "
                          "rules is off (promote_by_rules)")))
        n.say("  " + _("tickets: overdue/suspended → %(low)s + staff note; VIP and current → "
                       "keep (priority_vip = keep,", low=n.priority_name("Low")))
        n.say("    " + _("so a client who pays gets back exactly the priority it had); "
                         "Financeiro always open"))
        n.say("  " + _("groups: %(groups)s; departments: %(departments)s; time zone %(zone)s",
                       groups=", ".join(f"{i} {g}" for g, i in site.groups.items()),
                       departments=", ".join(f"{i} {d}" for d, i in site.departments.items()),
                       zone=site.settings.bridge.timezone))
        n.check(policy.grace_days < suspension, _(
            "grace %(grace)s < AutoSuspensionDays %(days)s: a client leaves VIP before the cron "
            "may suspend it", grace=policy.grace_days, days=suspension))

    # --- the cast, as WHMCS holds it before vipgate is installed ---------------------------

    def seed(self) -> None:
        n, s, _ = self.n, self.s, self.t.gettext
        n.say(_("Before vipgate: the VIP group (exempt from suspension) holds old clients, "
                "friends and big clients"))
        s.clock.set(datetime(2026, 10, 30, 14, 0))
        with s.quiet():
            self.client("Ana", "Souza", "VIP", "2014", N_("old client, pays on time"),
                        [("89.90", "2026-11-05", None)])
            self.client("Bruno", "Lima", "VIP", "2017", N_("the owner's friend"),
                        [("59.90", "2026-11-03", None)])
            self.client("Carla", "Mendes", "VIP", "2016", N_("big client"),
                        [("1200.00", "2026-10-20", None), ("450.00", "2026-10-26", None)])
            self.client("Diego", "Rocha", "VIP", "2015", N_("old client"),
                        [("129.90", "2026-11-04", None)])
            self.client("Eva", "Castro", "VIP", "2019", N_("dedicated server, pays on time"),
                        [("549.00", "2026-10-01", "2026-09-29 10:00:00"),
                         ("549.00", "2026-11-01", "2026-10-28 10:00:00")], "2026-12-01")
            self.client("Fábio", "Nunes", "Revendas", "2020", N_("reseller, not VIP (yet)"),
                        [("299.00", "2026-11-02", None)])
            for key, subject, priority in (("Carla", "Migração para o servidor novo", "Medium"),
                                           ("Diego", "E-mail fora do ar", "High")):
                opened = s.open_ticket(self[key].id, self.site.departments["Suporte"], subject,
                                       priority)
                assert opened.ticket_id is not None
                self[key].tickets.append(opened.ticket_id)
                n.say("  " + _("%(who)s has ticket #%(id)s open in Suporte: \"%(subject)s\" "
                               "(%(priority)s)", who=key, id=opened.ticket_id,
                               subject=subject, priority=n.priority_name(priority)))

    def client(self, first: str, last: str, group: str, since: str, role: str,
               bills: list[Bill], next_due: str | None = None) -> None:
        self.cast[first] = add_person(self.site, self.n, first, last, group, since, role,
                                      bills, next_due)

    def first_run(self) -> None:
        """A new installation's first full reconcile waits for the owner's confirmation."""
        n, store, _ = self.n, self.site.store, self.t.gettext
        n.say()
        n.say(_("vipgate is installed. Until the owner confirms its first full reconcile, "
                "WHMCS's cron only plans it:"))
        self.site.worker.full_reconcile("demo-first-plan", None)
        waiting = first_run.waiting_plan(store)
        n.check(waiting is not None and waiting.vip_in == 0 and waiting.vip_out == 1,
                _("the plan waits on the admin overview: 1 out of VIP (Carla owes), nobody "
                  "moved INTO the group exempt from suspension"), waiting)
        if waiting is not None:
            plan = first_run.describe(waiting.summary)
            t = n.quoting([plan])
            n.say("  " + t.gettext("plan: %(plan)s", plan=n.reasons([plan], t)))
        n.check(self.n.group_of(self.cast["Carla"].id) == "VIP",
                _("nothing applied yet: Carla is still in VIP"))
        first_run.confirm(store, by="the owner, on the admin overview", at=self.s.clock.aware)
        n.say("  " + _("the owner reads the plan and presses Confirm: from the next cron on, "
                       "vipgate applies"))

    # --- the days ---------------------------------------------------------------------------

    def day0(self) -> None:
        n, c, _ = self.n, self.cast, self.t.gettext
        self.morning(0, {s: "Carla" for s in c["Carla"].services})
        n.check(all(self.site.store.get_memory(c[k].id).pinned
                    for k in ("Ana", "Bruno", "Carla", "Diego", "Eva")),
                _("the five VIP members were adopted as pinned (the owner chose them)"))
        self.group_is("Carla", "Clientes", _("Carla left VIP for the default group Clientes"))
        n.check(n.left_vip_in(c["Carla"].id, "PreCronJob"),
                _("…during PreCronJob, so the cron's suspension step no longer saw her as "
                  "exempt"))
        n.check(all(n.service_status(sid) == "Suspended" for sid in c["Carla"].services),
                _("Carla's services are Suspended"))
        payers = ("Ana", "Bruno", "Diego", "Eva")
        n.check(all(n.group_of(c[k].id) == "VIP" and n.service_status(c[k].services[0])
                    == "Active" for k in payers),
                _("Ana, Bruno, Diego and Eva (nothing overdue past the grace) stay in VIP, "
                  "services Active"))
        self.priorities_are("Carla", ["Low"], _("Carla's open ticket was lowered to %(low)s",
                                                low=n.priority_name("Low")))
        self.n.show_note(c["Carla"].tickets[0], f"#{c['Carla'].invoices[0]}",
                         f"#{c['Carla'].invoices[1]}")
        self.priorities_are("Diego", ["High"], _("Diego's ticket stays %(high)s (VIP and "
                                                 "current: priority_vip = keep)",
                                                 high=n.priority_name("High")))
        self.at(0, "10:00", _("staff move Fábio (reseller) from Revendas into VIP by hand"))
        self.s.update_client(c["Fábio"].id, groupid=self.vip)
        n.settle()
        memory = self.site.store.get_memory(c["Fábio"].id)
        n.check(memory.pinned and memory.home_group_id == self.site.groups["Revendas"],
                _("Fábio is pinned, with Revendas recorded as his home group"), memory)

    def day1(self) -> None:
        n, c, _ = self.n, self.cast, self.t.gettext
        self.morning(1)
        ticket = c["Carla"].tickets[0]
        self.at(1, "10:00", _("staff raise Carla's ticket #%(id)s to %(high)s by hand (a big "
                              "client)", id=ticket, high=n.priority_name("High")))
        self.s.update_ticket(ticket, priority="High")
        n.settle()
        self.at(1, "10:30", _("Carla replies on ticket #%(id)s", id=ticket))
        self.s.client_reply(ticket, "Precisamos migrar ainda esta semana.")
        n.settle()
        self.priorities_are("Carla", ["High"], _("vipgate leaves the staff's %(high)s alone",
                                                 high=n.priority_name("High")))
        self.at(1, "11:00", _("staff move Eva out of VIP to Clientes by hand"))
        self.s.update_client(c["Eva"].id, groupid=self.site.groups["Clientes"])
        n.settle()
        memory = self.site.store.get_memory(c["Eva"].id)
        n.check(memory.excluded and not memory.pinned, _("Eva is unpinned and excluded"), memory)

    def day2(self) -> None:
        n, c, _ = self.n, self.cast, self.t.gettext
        self.morning(2)
        decided = self.site.worker.engine.plan(c["Eva"].id)
        n.say("    " + _("vipgate's decision for Eva: \"%(why)s\"",
                         why=n.reasons(decided.decision.reasons[:1]) if decided else "?"))
        rules = eligible(self.site.api.read_client_state(c["Eva"].id), Membership(),
                         self.site.settings.policy, self.s.today)
        n.say("    " + _("without the exclusion vipgate would say: \"%(why)s\"",
                         why=n.reasons(rules.reasons[:1])))
        group = n.group_of(c["Eva"].id)
        n.check(group == "Clientes", _("Eva stays in Clientes after the cron's full "
                                       "reconcile: she pays, but staff took her out"), group)
        self.at(2, "10:00", _("Ana pays invoice #%(id)s (%(amount)s, due tomorrow)",
                              id=c["Ana"].invoices[0], amount=self.money("89.90")))
        self.s.add_payment(c["Ana"].invoices[0])
        n.settle()
        self.group_is("Ana", "VIP", _("Ana stays in VIP"))
        first, second = c["Carla"].invoices
        self.at(2, "11:00", _("Carla pays invoice #%(paid)s (%(amount)s) but not #%(unpaid)s",
                              paid=first, amount=self.money("1200"), unpaid=second))
        self.s.add_payment(first)
        n.settle()
        self.carla_out(Decimal("450.00"))
        n.check(n.service_status(c["Carla"].services[0]) == "Active",
                _("WHMCS reactivated service #%(id)s (AutoUnsuspend)",
                  id=c["Carla"].services[0]))

    def carla_out(self, owed: Decimal) -> None:
        _ = self.t.gettext
        cached = self.site.store.get_standing(self["Carla"].id)
        found = cached.overdue_total if cached else None
        self.group_is("Carla", "Clientes", _("Carla stays out of VIP while an overdue balance "
                                             "remains"))
        self.n.check(found == owed, _("her overdue balance is %(amount)s",
                                      amount=self.money(owed)), found)

    def day3(self) -> None:
        c, _ = self.cast, self.t.gettext
        self.morning(3)
        invoice = c["Carla"].invoices[1]
        self.at(3, "10:00", _("Carla pays %(amount)s of invoice #%(id)s (partial payment)",
                              amount=self.money("200"), id=invoice))
        self.s.add_payment(invoice, "200.00")
        self.n.settle()
        self.carla_out(Decimal("250.00"))

    def day4(self) -> None:
        _ = self.t.gettext
        self.morning(4)
        self.group_is("Fábio", "Revendas", _("Fábio left VIP for his home group Revendas (the "
                                             "one he had before VIP)"))

    def day5(self) -> None:
        n, c, _ = self.n, self.cast, self.t.gettext
        self.morning(5, {c["Fábio"].services[0]: "Fábio"})
        self.group_is("Bruno", "Clientes", _("Bruno (the friend) left VIP for Clientes"))
        self.at(5, "10:00", _("Bruno opens a ticket in Suporte: \"%(subject)s\" (%(priority)s)",
                              subject="Site lento", priority=n.priority_name("Medium")))
        ticket, error = n.open_ticket(c["Bruno"].id, "Suporte", "Site lento", "Medium")
        n.settle()
        n.check(ticket is not None and error is None,
                _("accepted: Bruno is overdue, not suspended (block_when = suspended)"), error)
        if ticket is not None:
            c["Bruno"].tickets.append(ticket)
            self.priorities_are("Bruno", ["Low"], _("ticket #%(id)s got %(low)s priority",
                                                    id=ticket, low=n.priority_name("Low")))
            self.n.show_note(ticket, f"#{c['Bruno'].invoices[0]}", self.money("59.90"))

    def day6(self) -> None:
        n, c, _ = self.n, self.cast, self.t.gettext
        self.morning(6, {c["Bruno"].services[0]: "Bruno"})
        self.group_is("Diego", "Clientes", _("Diego left VIP for Clientes"))
        self.priorities_are("Diego", ["Low"], _("Diego's %(high)s ticket was lowered to "
                                                "%(low)s", high=n.priority_name("High"),
                                                low=n.priority_name("Low")))
        self.n.show_note(c["Diego"].tickets[0], f"#{c['Diego'].invoices[0]}")
        self.at(6, "11:00", _("Diego pays invoice #%(id)s (%(amount)s)",
                              id=c["Diego"].invoices[0], amount=self.money("129.90")))
        self.s.add_payment(c["Diego"].invoices[0])
        self.n.settle()
        self.group_is("Diego", "VIP", _("Diego is back in VIP at once"))
        self.priorities_are("Diego", ["High"], _("Diego's ticket is back to %(high)s, the "
                                                 "priority it had",
                                                 high=n.priority_name("High")))

    def day7(self) -> None:
        n, c, _ = self.n, self.cast, self.t.gettext
        self.morning(7)
        n.check(n.service_status(c["Diego"].services[0]) == "Active",
                _("Diego, who paid yesterday, was not suspended today"))
        invoice = c["Bruno"].invoices[0]
        self.at(7, "10:00", _("Bruno (suspended) tries to open a ticket in Suporte: "
                              "\"%(subject)s\"", subject="Site fora do ar"))
        ticket, error = n.open_ticket(c["Bruno"].id, "Suporte", "Site fora do ar", "High")
        n.say("    " + _("WHMCS shows him:"))
        for line in (error or "").splitlines():
            n.say(f"      | {line}")
        n.check(ticket is None and error is not None and f"#{invoice}" in error
                and self.money("59.90") in error,
                _("blocked, told why: invoice #%(id)s and the amount", id=invoice),
                (ticket, error))
        self.at(7, "10:02", _("what WHMCS's pages show of vipgate now (staff and Bruno see his "
                              "standing)"))
        n.show_whmcs_pages(c["Bruno"], c["Bruno"].tickets[0], invoice, self.money("59.90"))
        self.at(7, "10:05", _("Bruno opens a ticket in Financeiro: \"%(subject)s\"",
                              subject="Segunda via do boleto"))
        ticket, error = n.open_ticket(c["Bruno"].id, "Financeiro", "Segunda via do boleto",
                                      "Medium")
        n.settle()
        n.check(ticket is not None, _("accepted: Financeiro is a billing department"), error)
        if ticket is not None:
            c["Bruno"].tickets.append(ticket)
        self.priorities_are("Bruno", ["Low", "Low"], _("both of Bruno's tickets are %(low)s",
                                                       low=n.priority_name("Low")))

    def day8(self) -> None:
        n, c, _ = self.n, self.cast, self.t.gettext
        self.morning(8)
        self.at(8, "10:00", _("Bruno pays invoice #%(id)s (%(amount)s)",
                              id=c["Bruno"].invoices[0], amount=self.money("59.90")))
        self.s.add_payment(c["Bruno"].invoices[0])
        n.settle()
        self.group_is("Bruno", "VIP", _("Bruno is back in VIP at once"))
        n.check(n.service_status(c["Bruno"].services[0]) == "Active",
                _("WHMCS reactivated his service (AutoUnsuspend)"))
        self.priorities_are("Bruno", ["Medium", "Medium"],
                            _("his tickets are back to %(medium)s, the priority they had",
                              medium=n.priority_name("Medium")))

    def day9(self) -> None:
        """Reliability: the bridge is down while Carla pays the rest."""
        n, c, site, _ = self.n, self.cast, self.site, self.t.gettext
        self.morning(9)
        day8 = START.date() + timedelta(days=8)
        closed = snapshots.snapshots(site.store, day8, day8)
        n.check(bool(closed) and closed[0].closed_at is not None
                and closed[0].vip_restored >= 1,
                _("at midnight vipgate closed day 8's dashboard figures, Bruno's return in them"),
                closed[0] if closed else "no row")
        n.say(_("Reliability: the bridge goes down (a deploy, say) while Carla pays the rest"))
        self.at(9, "10:00", _("the bridge stops"))
        site.bridge.stop()
        invoice = c["Carla"].invoices[1]
        self.at(9, "10:30", _("Carla pays the remaining %(amount)s of invoice #%(id)s",
                              amount=self.money("250"), id=invoice))
        self.s.add_payment(invoice)
        waiting = site.forwarder.spooled()
        hooks = _spooled_hooks(site)
        n.say("    " + self.t.ngettext(
            "WHMCS keeps working; the stub spooled %(num)d event in mod_vipgate_spool: "
            "%(hooks)s", "WHMCS keeps working; the stub spooled %(num)d events in "
            "mod_vipgate_spool: %(hooks)s", len(waiting), hooks=", ".join(hooks)))
        n.check(hooks == ["AddInvoicePayment", "AfterModuleUnsuspend", "InvoicePaid"],
                _("the payment's three events wait in WHMCS's database"), hooks)
        self.at(9, "11:00", _("the bridge is back"))
        site.bridge.start()
        self.at(9, "11:05", _("WHMCS's cron runs again (every 5 minutes): AfterCronJob flushes "
                              "the spool, oldest first"))
        self.s.run_hook("AfterCronJob", {})
        arrived = {row.webhook_id for row in site.store.events(limit=100000)}
        n.settle()
        n.check(not site.forwarder.spooled() and set(waiting) <= arrived,
                _("spool empty, all %(num)s events in the inbox under their ids, none lost",
                  num=len(waiting)))
        self.group_is("Carla", "VIP", _("Carla (balance zero) is back in VIP"))
        n.check(all(n.service_status(sid) == "Active" for sid in c["Carla"].services),
                _("both of Carla's services are Active"))
        self.priorities_are("Carla", ["High"], _("her ticket keeps the %(high)s staff chose",
                                                 high=n.priority_name("High")))
        forged = requests.post(f"{site.bridge.url}/hooks/whmcs", timeout=5, data=(
            b'{"hook":"InvoicePaid","vars":{"invoiceid":"%d"},"occurred_at":'
            b'"2026-11-11T11:10:00-03:00"}' % c["Fábio"].invoices[0]), headers={
            "Content-Type": "application/json", "webhook-id": "msg_forged",
            "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,AAAA"})
        n.say("11:10 " + _("someone posts a forged InvoicePaid for Fábio: HTTP %(status)s "
                           "%(error)s", status=forged.status_code,
                           error=forged.json().get("error")))
        n.check(forged.status_code == 401 and site.store.get_event("msg_forged") is None,
                _("refused, not stored"))
        self.group_is("Fábio", "Revendas", _("Fábio, who never paid, stays out of VIP"))

    def recovery(self) -> None:
        """The story ends with what it recovered: the dashboard's Recovery figures for days 0
        to 9 (``Store.recovery``), and the episodes behind them, checked."""
        n, c, site, t, _ = self.n, self.cast, self.site, self.t, self.t.gettext
        zone = site.settings.bridge.timezone
        until = START.date() + timedelta(days=9)
        n.say()
        n.say("── " + _("what vipgate recovered (the dashboard's Recovery section, days 0 to "
                         "9)") + " " + "─" * 20)
        carla, bruno, fabio = (site.store.episodes(c[k].id) for k in ("Carla", "Bruno", "Fábio"))
        n.check(len(carla) == 1 and carla[0].how == PAID_UP
                and carla[0].recovered == Decimal("1650.00") and carla[0].days == 9,
                _("Carla's episode: %(amount)s recovered in %(days)s days (paid in three parts)",
                  amount=self.money("1650"), days=9), carla)
        suspended_on = [days.business_day(a.at, zone) for e in bruno for a in e.actions
                        if a.kind == SUSPENDED]
        n.check(len(bruno) == 1 and bruno[0].how == PAID_UP
                and bruno[0].recovered == Decimal("59.90") and bruno[0].days == 3
                and bruno[0].ended_on is not None and len(suspended_on) == 1
                and (bruno[0].ended_on - suspended_on[0]).days == 2,
                _("Bruno's episode: %(amount)s recovered in %(days)s days, %(after)s days after "
                  "WHMCS suspended him", amount=self.money("59.90"), days=3, after=2), bruno)
        n.check(len(fabio) == 1 and fabio[0].open and not fabio[0].recovered,
                _("Fábio's episode is still open: nothing recovered"), fabio)
        figures = site.store.recovery(START.date(), until, zone).total
        months = [(m.month, m.amount) for m in figures.recovered]
        n.check(months == [("2026-11", Decimal("1839.80"))] and figures.paid == 3
                and figures.within[7] == 2 and figures.median_days == 3,
                _("%(amount)s recovered in November (Carla, Bruno and Diego's %(diego)s); "
                  "%(paid)s episodes paid, %(within)s of them within 7 days; median %(median)s "
                  "days to pay", amount=self.money("1839.80"), diego=self.money("129.90"),
                  paid=3, within=2, median=3), figures)
        share = figures.phenomenon
        n.check((figures.suspended, figures.suspended_paid) == (3, 1),
                _("the seed's phenomenon: of the %(suspended)s clients WHMCS suspended (Carla, "
                  "Bruno, Fábio), %(paid)s paid within 7 days of the suspension (Bruno): "
                  "%(share)s", suspended=3, paid=1,
                  share="-" if share is None else t.number(share, 1) + "%"), figures)

    # --- the end ----------------------------------------------------------------------------

    def summary(self) -> None:
        n, _ = self.n, self.t.gettext
        n.say()
        n.say("── " + _("where everyone is now") + " " + "─" * 60)
        client, group, standing = _("client"), _("group"), _("standing")
        services, tickets = _("services"), _("open tickets")
        n.say(f"  {client:<13} {group:<9} {'vipgate':<9} {standing:<22} {services:<22} "
              f"{tickets}")
        for person in self.cast.values():
            memory = self.site.store.get_memory(person.id)
            flags = _("excluded") if memory.excluded else _("pinned") if memory.pinned \
                else _("by rules")
            services = ", ".join(f"#{s} {n.status_name(n.service_status(s))}"
                                 for s in person.services)
            tickets = ", ".join(f"#{t} {n.priority_name(p)} ({d})"
                                for t, d, p in n.open_tickets(person.id))
            n.say(f"  {person.name:<13} {n.group_of(person.id):<9} {flags:<9} "
                  f"{n.standing(person.id):<22} {services:<22} {tickets or '-'}")

    def page_urls(self) -> list[str]:
        """The sandbox WHMCS's pages where vipgate shows itself, for the final lines: Fábio
        (suspended, never paid) and Bruno's first ticket."""
        _ = self.t.gettext
        url, fabio, bruno = self.site.whmcs.url, self.cast.get("Fábio"), self.cast.get("Bruno")
        lines = []
        if fabio is not None:
            label = _("pages")
            lines.append(f"{label:<8}{url}/admin/clientssummary.php?userid={fabio.id}   "
                         f"{url}/clientarea.php?uid={fabio.id}   "
                         f"{url}/submitticket.php?uid={fabio.id}   "
                         + _("(Fábio, suspended)"))
        if bruno is not None and bruno.tickets:
            lines.append(f"        {url}/admin/supporttickets.php?action=view&id="
                         f"{bruno.tickets[0]}   " + _("(Bruno's ticket; the sandbox has no "
                                                      "login: uid picks the client)"))
        return lines


def _spooled_hooks(site: Installation) -> list[str]:
    with contextlib.closing(sqlite3.connect(site.workdir / "whmcs.db")) as conn:
        try:
            return [r[0] for r in conn.execute("SELECT hook FROM mod_vipgate_spool ORDER BY id")]
        except sqlite3.OperationalError:
            return []


def run_demo(*, port: int = 0, wait: Callable[[], object] | None = None,
             out: Callable[[str], None] = print, use_php: bool | None = None,
             keep: bool = False, language: str = "en") -> int:
    """Play the seed story; 0 when every check passed, else 1. ``wait`` keeps the servers up
    until it returns (Ctrl-C); without it the servers stop at the end and their addresses are
    not printed. ``use_php`` None: the real stub when ``php`` is installed. The throw-away
    folder (databases, generated secrets, the admin account) is removed on the way out, also
    on a failure or an interrupt, unless ``keep``: then its path is printed. ``language``:
    the story's (``pt_BR`` or ``en``), also the installation's: vipgate's ``[bridge]
    language`` and the clients' language in WHMCS."""
    t = Texts(language)
    workdir = make_workdir()
    site: Installation | None = None
    try:
        site = install(START, workdir, port=port, use_php=use_php, language=language)
        return _play(site, wait, out, t)
    finally:
        if site is not None:
            site.close()
        if keep:
            out(t.gettext("kept the demo's folder (databases, secrets, admin account): "
                          "%(folder)s", folder=workdir))
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _play(site: Installation, wait: Callable[[], object] | None,
          out: Callable[[str], None], t: Texts) -> int:
    _ = t.gettext
    n = Narrator(site, out, t)
    story = Story(site, n)
    try:
        story.intro()
        out("")
        story.seed()
        story.first_run()
        for day in (story.day0, story.day1, story.day2, story.day3, story.day4, story.day5,
                    story.day6, story.day7, story.day8, story.day9, story.recovery):
            day()
        story.summary()
    except Exception as exc:
        n.check(False, _("the story ran to the end"), f"{type(exc).__name__}: {exc}")
    out("")
    total = n.passed + len(n.failed)
    if n.failed:
        out(t.ngettext("%(failed)d of %(num)d check FAILED:", "%(failed)d of %(num)d checks "
                       "FAILED:", total, failed=len(n.failed)))
        for claim in n.failed:
            out(f"  ✗ {claim}")
    else:
        out(t.ngettext("all %(num)d check passed", "all %(num)d checks passed", total))
    if wait is None:  # the servers stop now: their addresses would lead nowhere
        return 1 if n.failed else 0
    out("")
    out(f"{'bridge':<8}{site.bridge.url}/hooks/whmcs   {site.bridge.url}/healthz   "
        f"{site.bridge.url}/metrics")
    out(f"{'WHMCS':<8}{site.whmcs.url}/includes/api.php   " + _(
        "(identifier %(identifier)s, secret %(secret)s)", identifier=API_ID, secret=API_SECRET))
    password = secrets.token_urlsafe(12)
    accounts.create_user(site.store, "admin", password, datetime.now(UTC))
    out(f"{'admin':<8}{site.bridge.url}/admin/   " + _(
        "(account admin, password %(password)s; the dashboard, the roster and every client's "
        "reasons after the story)", password=password))
    for line in story.page_urls():
        out(line)
    with contextlib.suppress(KeyboardInterrupt):  # an interrupt as soon as the line is out
        out(_("Ctrl-C to stop."))
        wait()
    return 1 if n.failed else 0

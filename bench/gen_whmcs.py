#!/usr/bin/env python3
"""Generate a WHMCS-shaped dataset of N clients, for benchmarking vipgate's bulk resync.

    python bench/gen_whmcs.py [--clients N] [--url URL] [--seed S] [--today YYYY-MM-DD]
                              [--quiet]

    --clients  number of clients (default 100000: about 1M invoices)
    --url      target database (default mysql+pymysql://root@127.0.0.1:3306/vipgate_bench);
               ``sqlite:///path`` works too (small N: tests)
    --seed     random seed (default 1); the same seed gives the same rows
    --today    the day the data is "as of" (default 2026-11-21)
    --quiet    print nothing

From Python (tests, ``bench/resync``)::

    from gen_whmcs import generate          # with bench/ on sys.path
    counts = generate(url, 100_000, seed=1, today=date(2026, 11, 21))  # {table: rows}

What it does. On MariaDB it creates the URL's database if missing and refuses (exit 2) a
database whose name contains neither "bench" nor "test", so that nobody wipes a real WHMCS.
It drops and recreates WHMCS's tables only (``bridge.whmcs.schema.metadata``),
writes the reference rows (currency BRL, client groups Clientes and VIP (exempt from
suspension), departments Suporte and Financeiro, WHMCS's ticket statuses and configuration,
products, a server), then the clients in chunks of 5,000, deterministically from the seed:

- ``tblclients``: created over the last 8 years; ~60% in group 1 "Clientes", ~10% in group 2
  "VIP", the rest in no group; ~3% Inactive or Closed (billing stopped months ago, services
  Cancelled/Terminated, every invoice Paid).
- ``tblhosting``: one monthly service per client (its invoices' item), ~20% a second, annual,
  one; mostly Active.
- ``tblinvoices`` (+ one ``tblinvoiceitems`` row each, type Hosting, relid the monthly service):
  1–19 monthly invoices per client (about 10 on average, capped by the client's age), dated 14
  days before their due date; past ones Paid (``datepaid`` from a week early to a few days
  late, 5% paid 10–40 days late), and the next one, Unpaid, when it is due within 14 days.
  Every Paid invoice has a ``tblaccounts`` payment of its total on ``datepaid``.
- ~8% of clients overdue: their last 1–3 past invoices are Unpaid, the newest due 5–27 days
  before ``--today`` (so the third of three is 2–3 months overdue); a quarter of those (~2% of
  clients) have part of the oldest one paid (a ``tblaccounts`` row of 20–80% of it); ~42% of
  the overdue clients outside VIP whose product has a provisioning module (~2.3% of clients)
  have the service Suspended with an empty reason, as WHMCS 8's cron leaves it (VIPs are
  exempt, and the cron suspends only through a module, so the overdue VIPs — ~0.8% of
  clients — are the story: VIPs who stopped paying and were never suspended).
- ~1% of clients with a 'Payment Pending' invoice 1–20 days past due.
- ``tbltickets``: ~0.2 active tickets per client (Open/Answered/Customer-Reply/In Progress,
  Low/Medium/High; overdue clients open more, more of them in department 2 Financeiro), and
  ~0.3 Closed ones per client.

Ids are assigned here (ascending, invoices ascending by client), so rows reference each other
without reading back. On MariaDB each chunk is written as tab-separated files and loaded with
``LOAD DATA LOCAL INFILE`` by a second thread (on its own connection) while the next chunk is
generated; the secondary indexes of the big tables are dropped before the load and rebuilt
after it (one ``ALTER TABLE`` per table), then ``ANALYZE TABLE``. Memory does not grow with N.
On SQLite the rows go through ``executemany``.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from bridge.sandbox.schema import DEFAULT_CONFIGURATION, DEFAULT_TICKET_STATUSES, make_whmcs_engine
from bridge.store.database import make_sql_engine
from bridge.whmcs.schema import (
    metadata,
    tblaccounts,
    tblclientgroups,
    tblclients,
    tblconfiguration,
    tblcurrencies,
    tblhosting,
    tblinvoiceitems,
    tblinvoices,
    tblproductgroups,
    tblproducts,
    tblservers,
    tblticketdepartments,
    tbltickets,
    tblticketstatuses,
)

DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/vipgate_bench"
DEFAULT_TODAY = date(2026, 11, 21)
CHUNK_CLIENTS = 5000
QUEUE_CHUNKS = 2  # chunks written to disk ahead of the loader

# Shares (of all clients) — see the module docstring.
SHARE_CLOSED = 0.03
SHARE_OVERDUE = 0.08
SHARE_PENDING = 0.01
SHARE_VIP = 0.10
SHARE_GROUP1 = 0.60
PARTIAL_OF_OVERDUE = 0.25  # ~2% of clients
SUSPENDED_OF_OVERDUE_NON_VIP = 0.03 / (SHARE_OVERDUE * (1 - SHARE_VIP))  # ~3% of clients
OVERDUE_REASON = ""  # WHMCS 8's cron stores no reason for an overdue suspension

GOOD, OVERDUE, PENDING, GONE = 0, 1, 2, 3

# (id, gid, name, monthly price, weight in %, module)
PRODUCTS = (
    (1, 1, "Hospedagem Básica", "19.90", 34, "cpanel"),
    (2, 1, "Hospedagem Plus", "39.90", 24, "cpanel"),
    (3, 1, "Revenda 10", "89.90", 10, "cpanel"),
    (4, 2, "VPS 2 GB", "119.90", 10, "virtualizor"),
    (5, 3, "Internet Fibra 300M", "99.90", 17, ""),
    (6, 3, "Link Dedicado 100M", "459.00", 5, ""),
)
SECOND_PRODUCT = (7, 1, "E-mail Profissional", "199.00", 0, "cpanel")  # billed annually
PRODUCT_GROUPS = ((1, "Hospedagem"), (2, "Servidores"), (3, "Internet"))
GATEWAYS = ("banktransfer", "banktransfer", "mailin", "paypal", "stripe")
SERVICE_PASSWORD = "bench-service-password"
CLIENT_PASSWORD_HASH = "$2y$10$benchbenchbenchbenchbenchbenchbenchbenchbenchbenchbe"

FIRST_NAMES = (("Ana", "ana"), ("João", "joao"), ("Maria", "maria"), ("José", "jose"),
               ("Carla", "carla"), ("Pedro", "pedro"), ("Juliana", "juliana"),
               ("Lucas", "lucas"), ("Fernanda", "fernanda"), ("Rafael", "rafael"),
               ("Patrícia", "patricia"), ("Marcos", "marcos"), ("Beatriz", "beatriz"),
               ("Gustavo", "gustavo"), ("Camila", "camila"), ("Bruno", "bruno"),
               ("Larissa", "larissa"), ("Diego", "diego"), ("Aline", "aline"),
               ("Thiago", "thiago"), ("Renata", "renata"), ("Felipe", "felipe"),
               ("Vanessa", "vanessa"), ("André", "andre"), ("Letícia", "leticia"),
               ("Rodrigo", "rodrigo"), ("Gabriela", "gabriela"), ("Eduardo", "eduardo"),
               ("Mariana", "mariana"), ("Ricardo", "ricardo"), ("Paula", "paula"),
               ("Vinícius", "vinicius"))
LAST_NAMES = (("Silva", "silva"), ("Souza", "souza"), ("Oliveira", "oliveira"),
              ("Santos", "santos"), ("Pereira", "pereira"), ("Lima", "lima"),
              ("Costa", "costa"), ("Ferreira", "ferreira"), ("Rodrigues", "rodrigues"),
              ("Almeida", "almeida"), ("Nascimento", "nascimento"), ("Araújo", "araujo"),
              ("Carvalho", "carvalho"), ("Gomes", "gomes"), ("Martins", "martins"),
              ("Rocha", "rocha"), ("Ribeiro", "ribeiro"), ("Barbosa", "barbosa"),
              ("Reis", "reis"), ("Mendes", "mendes"), ("Cardoso", "cardoso"),
              ("Teixeira", "teixeira"), ("Moreira", "moreira"), ("Correia", "correia"),
              ("Dias", "dias"), ("Castro", "castro"), ("Pinto", "pinto"),
              ("Monteiro", "monteiro"))
COMPANY_SUFFIXES = ("Telecom Ltda", "Comércio ME", "Tecnologia Ltda", "Serviços EIRELI",
                    "Digital ME", "Informática Ltda")
CITIES = (("São Paulo", "SP", "01"), ("Rio de Janeiro", "RJ", "20"), ("Belo Horizonte", "MG", "30"),
          ("Curitiba", "PR", "80"), ("Porto Alegre", "RS", "90"), ("Salvador", "BA", "40"),
          ("Recife", "PE", "50"), ("Fortaleza", "CE", "60"), ("Goiânia", "GO", "74"),
          ("Campinas", "SP", "13"), ("Florianópolis", "SC", "88"), ("Manaus", "AM", "69"),
          ("Londrina", "PR", "86"), ("Uberlândia", "MG", "38"), ("Natal", "RN", "59"))
STREETS = ("Rua das Flores", "Avenida Brasil", "Rua XV de Novembro", "Rua São João",
           "Avenida Paulista", "Rua Sete de Setembro", "Rua Tiradentes", "Avenida Atlântica")
OPEN_TITLES = ("Site fora do ar", "Erro 500 no WordPress", "Não consigo acessar o e-mail",
               "Lentidão na conexão", "Certificado SSL expirado", "Dúvida sobre o plano",
               "Migração de site", "Backup do banco de dados", "Internet caindo à noite",
               "Alterar DNS do domínio")
BILLING_TITLES = ("Segunda via do boleto", "Dúvida sobre a fatura", "Pagamento não baixado",
                  "Desbloqueio do serviço", "Alterar forma de pagamento")
MESSAGE = "Olá, preciso de ajuda com o meu serviço. Aguardo retorno, obrigado."

# Open (active) ticket statuses and priorities, each 100 slots (weights in %).
OPEN_STATUSES = ("Open",) * 35 + ("Answered",) * 35 + ("Customer-Reply",) * 20 \
    + ("In Progress",) * 10
URGENCIES = ("Low",) * 25 + ("Medium",) * 55 + ("High",) * 20
PRODUCT_SLOTS = tuple(p for p in PRODUCTS for _ in range(p[4]))
assert len(OPEN_STATUSES) == len(URGENCIES) == len(PRODUCT_SLOTS) == 100
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# The big tables: loaded in chunks; on MariaDB their secondary indexes are built after.
BIG_TABLES = (tblclients, tblhosting, tblinvoices, tblinvoiceitems, tblaccounts, tbltickets)

# The columns each chunk line gives, in order; every other NOT NULL column without a server
# default is appended with its (constant) Python default, see _layout().
VARYING: dict[str, tuple[str, ...]] = {
    "tblclients": ("id", "uuid", "firstname", "lastname", "companyname", "email", "address1",
                   "city", "state", "postcode", "country", "phonenumber", "password",
                   "defaultgateway", "datecreated", "groupid", "lastlogin", "ip", "status",
                   "language", "created_at", "updated_at"),
    "tblhosting": ("id", "userid", "orderid", "packageid", "server", "regdate", "domain",
                   "paymentmethod", "firstpaymentamount", "amount", "billingcycle",
                   "nextduedate", "nextinvoicedate", "domainstatus", "username", "password",
                   "suspendreason", "created_at", "updated_at"),
    "tblinvoices": ("id", "userid", "date", "duedate", "datepaid", "subtotal", "total",
                    "status", "paymentmethod", "created_at", "updated_at"),
    "tblinvoiceitems": ("id", "invoiceid", "userid", "type", "relid", "description", "amount",
                        "duedate", "paymentmethod"),
    "tblaccounts": ("id", "userid", "currency", "gateway", "date", "description", "amountin",
                    "transid", "invoiceid"),
    "tbltickets": ("id", "tid", "did", "userid", "c", "ipaddress", "date", "title", "message",
                   "status", "urgency", "lastreply", "service", "clientunread", "updated_at"),
}


class Refused(ValueError):
    """The target database may be a real WHMCS: its name has neither "bench" nor "test"."""


def _layout(table: sa.Table) -> tuple[list[str], str]:
    """The column list of ``table``'s chunk lines and the constant tab-prefixed suffix that
    fills every other NOT NULL column without a server default."""
    varying = VARYING[table.name]
    columns, fill = list(varying), []
    for column in table.columns:
        if (column.name in varying or column.nullable or column.server_default is not None
                or column.primary_key):
            continue
        default = column.default
        if default is None or not default.is_scalar:
            raise RuntimeError(f"{table.name}.{column.name} needs a value in VARYING")
        columns.append(column.name)
        fill.append(str(default.arg))
    return columns, "".join("\t" + value for value in fill)


LAYOUTS = {table.name: _layout(table) for table in BIG_TABLES}


# --- the rows ---------------------------------------------------------------------------------

class Generator:
    """Chunk lines (tab-separated, in ``LAYOUTS`` order) for consecutive clients."""

    def __init__(self, seed: int, today: date, *, sqlite: bool) -> None:
        self.rng = random.Random(seed)
        self.today = today
        self.T = today.toordinal()
        self.base = self.T - 3400  # 8 years of history, plus the oldest closed ones
        top = self.T + 420
        self.days = [date.fromordinal(o).isoformat() for o in range(self.base, top)]
        self.mi0 = self._mi(date.fromordinal(self.base)) - 1
        self.ym: list[tuple[int, int]] = []
        for o in range(self.base, top):
            d = date.fromordinal(o)
            self.ym.append((self._mi(d), d.day))
        self.mstart = [date((mi // 12), mi % 12 + 1, 1).toordinal()
                       for mi in range(self.mi0, self._mi(date.fromordinal(top)) + 2)]
        self.times = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]
        self.dt_suffix = ".000000" if sqlite else ""  # SQLAlchemy's DateTime text on SQLite
        rng = self.rng
        self.ips = [f"{rng.randrange(177, 201)}.{rng.randrange(256)}.{rng.randrange(256)}."
                    f"{rng.randrange(1, 255)}" for _ in range(4096)]
        self.next_service = self.next_invoice = self.next_account = self.next_ticket = 1
        self.suffix = {name: layout[1] for name, layout in LAYOUTS.items()}

    @staticmethod
    def _mi(d: date) -> int:
        return d.year * 12 + d.month - 1

    def chunk(self, first: int, count: int) -> dict[str, list[str]]:
        rng = self.rng
        r = rng.random
        bits = rng.getrandbits
        T, base, days, times, ym = self.T, self.base, self.days, self.times, self.ym
        ms, mi0 = self.mstart, self.mi0
        today_mi, today_day = self._mi(self.today), self.today.day
        dts = self.dt_suffix
        sfx = self.suffix
        sc, sh, si, sii, sa_, st = (sfx["tblclients"], sfx["tblhosting"], sfx["tblinvoices"],
                                    sfx["tblinvoiceitems"], sfx["tblaccounts"],
                                    sfx["tbltickets"])
        clients: list[str] = []
        services: list[str] = []
        invoices: list[str] = []
        items: list[str] = []
        accounts: list[str] = []
        tickets: list[str] = []
        sid, iid, aid, tid = (self.next_service, self.next_invoice, self.next_account,
                              self.next_ticket)
        zero = "0000-00-00 00:00:00"

        for cid in range(first, first + count):
            u = r()
            if u < SHARE_CLOSED:
                kind = GONE
            elif u < SHARE_CLOSED + SHARE_OVERDUE:
                kind = OVERDUE
            elif u < SHARE_CLOSED + SHARE_OVERDUE + SHARE_PENDING:
                kind = PENDING
            else:
                kind = GOOD
            g = r()
            groupid = 2 if g < SHARE_VIP else 1 if g < SHARE_VIP + SHARE_GROUP1 else 0
            created = T - 1 - int(r() * 2920)
            late_share = 0.25 if kind == OVERDUE else 0.05
            k = 0
            if kind == GOOD:
                dom = 1 + int(r() * 28)
                mi = today_mi if dom < today_day else today_mi - 1
                last_due = ms[mi - mi0] + dom - 1
            else:
                if kind == OVERDUE:
                    x = r()
                    k = 1 if x < 0.6 else 2 if x < 0.9 else 3
                    d0 = 5 + int(r() * 23)
                elif kind == PENDING:
                    d0 = 1 + int(r() * 20)
                else:
                    d0 = 60 + int(r() * 660)
                last_due = T - d0
                mi, dom = ym[last_due - base]
                if dom > 28:
                    last_due -= dom - 28
                    dom = 28
            n = 1 + int(r() * 19)
            if n < k:
                n = k
            if kind != GOOD:  # old enough for its unpaid (or last) invoices
                oldest = ms[mi - max(k, 1) + 1 - mi0] + dom - 1
                if created > oldest - 20:
                    created = oldest - 20 - int(r() * 60)
            next_due = ms[mi + 1 - mi0] + dom - 1

            # the client
            fn, fa = FIRST_NAMES[int(r() * len(FIRST_NAMES))]
            ln, la = LAST_NAMES[int(r() * len(LAST_NAMES))]
            city, state, cep = CITIES[int(r() * len(CITIES))]
            company = f"{ln} {COMPANY_SUFFIXES[int(r() * 6)]}" if r() < 0.3 else ""
            gateway = GATEWAYS[int(r() * 5)]
            ip = self.ips[int(r() * 4096)]
            if kind == GONE:
                status = "Inactive" if r() < 0.4 else "Closed"
                login_day = last_due
            else:
                status = "Active"
                login_day = T - 1 - int(r() * 60)
            if login_day < created:
                login_day = created
            created_s = days[created - base]
            created_at = f"{created_s} {times[int(r() * 86400)]}"
            clients.append(
                f"{cid}\t{uuid.UUID(int=bits(128), version=4)}\t{fn}\t{ln}\t{company}\t"
                f"{fa}.{la}{cid}@example.com\t{STREETS[int(r() * 8)]}, {1 + int(r() * 2000)}\t"
                f"{city}\t{state}\t{cep}{int(r() * 1000):03d}-{int(r() * 1000):03d}\tBR\t"
                f"+55.{11 + int(r() * 80)}9{int(r() * 100000000):08d}\t{CLIENT_PASSWORD_HASH}\t"
                f"{gateway}\t{created_s}\t{groupid}\t"
                f"{days[login_day - base]} {times[int(r() * 86400)]}{dts}\t{ip}\t{status}\t"
                f"portuguese-br\t{created_at}\t{created_at}{sc}")

            # the monthly service (every invoice's item) and maybe an annual one
            _pid, _gid, pname, price, _w, module = PRODUCT_SLOTS[int(r() * 100)]
            cents = int(price.replace(".", ""))
            service = sid
            sid += 1
            domain = f"{la}{cid}.com.br"
            reason = ""
            if kind == GONE:
                sstatus = "Terminated" if r() < 0.5 else "Cancelled"
                nextdue = next_due
            elif kind == OVERDUE:
                nextdue = ms[mi - k + 1 - mi0] + dom - 1  # the oldest unpaid
                # the cron suspends only through a module (r() drawn alike either way)
                if groupid != 2 and r() < SUSPENDED_OF_OVERDUE_NON_VIP and module:
                    sstatus, reason = "Suspended", OVERDUE_REASON
                else:
                    sstatus = "Active"
            elif kind == PENDING:
                sstatus, nextdue = "Active", last_due
            else:
                sstatus, nextdue = "Active", next_due
            nd = days[nextdue - base]
            services.append(
                f"{service}\t{cid}\t{service}\t{_pid}\t1\t{created_s}\t{domain}\t{gateway}\t"
                f"{price}\t{price}\tMonthly\t{nd}\t{nd}\t{sstatus}\tu{service}\t"
                f"{SERVICE_PASSWORD}\t{reason}\t{created_at}\t{created_at}{sh}")
            if r() < 0.2:
                reg = created + int(r() * (T - created))
                due2 = T + 1 + int(r() * 364)
                s2 = "Active" if kind != GONE else sstatus
                reg_s = days[reg - base]
                services.append(
                    f"{sid}\t{cid}\t{sid}\t{SECOND_PRODUCT[0]}\t1\t{reg_s}\tmail.{domain}\t"
                    f"{gateway}\t{SECOND_PRODUCT[3]}\t{SECOND_PRODUCT[3]}\tAnnually\t"
                    f"{days[due2 - base]}\t{days[due2 - base]}\t{s2}\tm{sid}\t"
                    f"{SERVICE_PASSWORD}\t\t{reg_s} 10:00:00\t{reg_s} 10:00:00{sh}")
                sid += 1

            # the invoices, oldest first; the next one if it is due within 14 days
            description = f"{pname} - {domain}"
            partial_done = kind != OVERDUE or r() >= PARTIAL_OF_OVERDUE
            for j in range(n - 1, -1 - (kind != GONE and next_due - T <= 14), -1):
                due = ms[mi - j - mi0] + dom - 1
                if due < created:
                    continue
                inv_day = due - 14 if due - 14 > created else created
                inv_s = days[inv_day - base]
                due_s = days[due - base]
                made = f"{inv_s} 09:05:00"
                if j < k:  # overdue (j < k) or the next one (j == -1)
                    istatus = "Unpaid"
                elif kind == PENDING and j == 0:
                    istatus = "Payment Pending"
                else:
                    istatus = "Paid"
                if istatus == "Paid":
                    x = r()
                    if x < late_share:
                        paid = due + 10 + int(r() * 31)
                    elif x < late_share + 0.1:
                        paid = due + 3 + int(r() * 7)
                    else:
                        paid = due - 7 + int(r() * 10)
                    if paid < inv_day:
                        paid = inv_day
                    if paid >= T:
                        paid = T - 1
                    paid_s = f"{days[paid - base]} {times[int(r() * 86400)]}"
                    invoices.append(f"{iid}\t{cid}\t{inv_s}\t{due_s}\t{paid_s}\t{price}\t"
                                    f"{price}\tPaid\t{gateway}\t{made}\t{paid_s}{si}")
                    accounts.append(f"{aid}\t{cid}\t1\t{gateway}\t{paid_s}{dts}\t"
                                    f"Invoice Payment\t{price}\tTX{iid}\t{iid}{sa_}")
                    aid += 1
                else:
                    invoices.append(f"{iid}\t{cid}\t{inv_s}\t{due_s}\t{zero}\t{price}\t"
                                    f"{price}\t{istatus}\t{gateway}\t{made}\t{made}{si}")
                    if not partial_done and j == k - 1:
                        part = cents * (20 + int(r() * 61)) // 100
                        day = due + int(r() * (T - due))
                        accounts.append(
                            f"{aid}\t{cid}\t1\t{gateway}\t{days[day - base]} "
                            f"{times[int(r() * 86400)]}{dts}\tInvoice Payment\t"
                            f"{part // 100}.{part % 100:02d}\tTX{iid}-1\t{iid}{sa_}")
                        aid += 1
                        partial_done = True
                items.append(f"{iid}\t{iid}\t{cid}\tHosting\t{service}\t{description}\t"
                             f"{price}\t{due_s}\t{gateway}{sii}")
                iid += 1

            # tickets: active ones (not for closed clients), then closed ones
            x = r()
            if kind == GONE:
                n_open = 0
            elif kind == GOOD:
                n_open = 1 if x < 0.13 else 2 if x < 0.145 else 3 if x < 0.148 else 0
            else:
                n_open = 1 if x < 0.3 else 2 if x < 0.4 else 3 if x < 0.43 else 0
            x = r()
            n_closed = 1 if x < 0.2 else 2 if x < 0.25 else 0
            billing_share = 0.06 if kind == GOOD else 0.35
            for t in range(n_open + n_closed):
                if t < n_open:
                    day = T - int(r() * 30)
                    tstatus = OPEN_STATUSES[int(r() * 100)]
                else:
                    day = T - int(r() * 730)
                    tstatus = "Closed"
                if day < created:
                    day = created
                billing = r() < billing_share
                title = (BILLING_TITLES[int(r() * 5)] if billing
                         else OPEN_TITLES[int(r() * 10)])
                opened = f"{days[day - base]} {times[int(r() * 32400)]}"
                reply_day = day + int(r() * 4)
                if reply_day >= T:
                    reply_day = T
                last = f"{days[reply_day - base]} {times[int(r() * 32400) + 1]}"
                if last < opened:
                    last = opened
                mask = f"{UPPER[int(r() * 26)]}{UPPER[int(r() * 26)]}{UPPER[int(r() * 26)]}" \
                    f"-{tid:06d}"
                tickets.append(
                    f"{tid}\t{mask}\t{2 if billing else 1}\t{cid}\t{bits(32):08x}\t{ip}\t"
                    f"{opened}\t{title}\t{MESSAGE}\t{tstatus}\t{URGENCIES[int(r() * 100)]}\t"
                    f"{last}{dts}\t{'S' + str(service) if r() < 0.5 else ''}\t"
                    f"{int(tstatus == 'Answered')}\t{last}{st}")
                tid += 1

        self.next_service, self.next_invoice, self.next_account, self.next_ticket = (
            sid, iid, aid, tid)
        return {"tblclients": clients, "tblhosting": services, "tblinvoices": invoices,
                "tblinvoiceitems": items, "tblaccounts": accounts, "tbltickets": tickets}


# --- the target database ----------------------------------------------------------------------

def _is_mysql(url: str) -> bool:
    return make_url(url).get_backend_name() in ("mysql", "mariadb")


def check_target(url: str) -> None:
    """Refuse a MariaDB/MySQL database whose name contains neither "bench" nor "test"."""
    if not _is_mysql(url):
        return
    name = make_url(url).database or ""
    if "bench" not in name.lower() and "test" not in name.lower():
        raise Refused(f"refusing to wipe database {name!r}: its name must contain "
                      "'bench' or 'test'")


def _session_setup(dbapi_connection: Any, _record: Any) -> None:
    """WHMCS's session: no strict mode, zero dates allowed; and no checks during the load."""
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION sql_mode = REPLACE(REPLACE(REPLACE(REPLACE(@@SESSION.sql_mode,"
                   " 'NO_ZERO_DATE', ''), 'NO_ZERO_IN_DATE', ''), 'STRICT_TRANS_TABLES', ''),"
                   " 'STRICT_ALL_TABLES', '')")
    cursor.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0")
    cursor.close()


def _mysql_engine(url: str) -> Engine:
    """The sandbox's engine settings, without read timeouts (an index build on 10M rows
    takes minutes) and with LOAD DATA LOCAL allowed."""
    engine = make_sql_engine(url, pool_size=3, max_overflow=2, connect_args={
        "connect_timeout": 10, "charset": "utf8mb4", "local_infile": True})
    sa.event.listen(engine, "connect", _session_setup)
    return engine


def _prepare_mysql_server(url: str, say: Callable[[str], None]) -> None:
    target = make_url(url)
    server = sa.engine.URL.create(target.drivername, target.username, target.password,
                                  target.host, target.port, None, target.query)
    admin = make_sql_engine(server.render_as_string(hide_password=False),
                        connect_args={"connect_timeout": 10, "charset": "utf8mb4"})
    name = target.database
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS `{name}` "
                                 "CHARACTER SET utf8mb4"))
            if not int(conn.execute(sa.text("SELECT @@GLOBAL.local_infile")).scalar() or 0):
                conn.execute(sa.text("SET GLOBAL local_infile = 1"))
                say("note: the server had local_infile off; set it on (SET GLOBAL)")
    finally:
        admin.dispose()


def _reference_rows(engine: Engine) -> dict[str, int]:
    rows: dict[sa.Table, list[dict[str, Any]]] = {
        tblcurrencies: [dict(id=1, code="BRL", prefix="R$ ", suffix="", format=1, rate=1,
                             default=1)],
        tblclientgroups: [
            dict(id=1, groupname="Clientes", groupcolour="#FFFFFF", discountpercent=0,
                 susptermexempt="", separateinvoices=""),
            dict(id=2, groupname="VIP", groupcolour="#28C99B", discountpercent=0,
                 susptermexempt="on", separateinvoices="")],
        tblticketdepartments: [
            dict(id=n, name=name, description=name, email=f"{name.lower()}@example.com",
                 clientsonly="", piperepliesonly="", noautoresponder="", hidden="", order=n,
                 host="", port="", login="", password="")
            for n, name in ((1, "Suporte"), (2, "Financeiro"))],
        tblticketstatuses: [
            dict(zip(("id", "title", "color", "sortorder", "showactive", "showawaiting",
                      "autoclose"), (n, *row), strict=True))
            for n, row in enumerate(DEFAULT_TICKET_STATUSES, 1)],
        tblconfiguration: [dict(setting=k, value=v) for k, v in DEFAULT_CONFIGURATION.items()],
        tblproductgroups: [dict(id=gid, name=name) for gid, name in PRODUCT_GROUPS],
        tblproducts: [dict(id=p[0], type="hostingaccount", gid=p[1], name=p[2],
                           description=f"{p[2]} ({p[3]})", servertype=p[5])
                      for p in (*PRODUCTS, SECOND_PRODUCT)],
        tblservers: [dict(id=1, name="Servidor 1", ipaddress="192.0.2.10",
                          hostname="s1.example.com", type="cpanel", username="root",
                          password="bench-server-password", accesshash="", secure="on",
                          port=2087)],
    }
    with engine.begin() as conn:
        for table, values in rows.items():
            conn.execute(table.insert(), values)
    return {table.name: len(values) for table, values in rows.items()}


def _add_indexes_ddl(engine: Engine, table: sa.Table) -> str | None:
    """One ``ALTER TABLE ... ADD INDEX ..., ADD INDEX ...`` for ``table``'s schema indexes."""
    parts = []
    for index in sorted(table.indexes, key=lambda i: i.name or ""):
        ddl = str(sa.schema.CreateIndex(index).compile(dialect=engine.dialect)).strip()
        found = re.fullmatch(r"CREATE (UNIQUE )?INDEX (\S+) ON (\S+) \((.*)\)", ddl, re.S)
        if found is None:
            raise RuntimeError(f"unexpected index DDL: {ddl}")
        unique, name, _table, columns = found.groups()
        parts.append(f"ADD {unique or ''}INDEX {name} ({columns})")
    return f"ALTER TABLE {table.name} " + ", ".join(parts) if parts else None


class MariaDbLoader:
    """LOAD DATA LOCAL INFILE of each chunk's files on a second thread (its own connection),
    while the main thread generates the next chunk."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dir = tempfile.mkdtemp(prefix="gen_whmcs_")
        self.queue: queue.Queue[list[tuple[str, str, int]] | None] = queue.Queue(QUEUE_CHUNKS)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="gen_whmcs-loader", daemon=True)
        self.thread.start()
        self.n = 0

    def put(self, chunk: dict[str, list[str]]) -> None:
        jobs = []
        for name, lines in chunk.items():
            if not lines:
                continue
            self.n += 1
            path = os.path.join(self.dir, f"{self.n:06d}-{name}.tsv")
            with open(path, "w", encoding="utf-8", newline="\n") as out:
                out.write("\n".join(lines))
                out.write("\n")
            jobs.append((name, path, len(lines)))
        while True:
            self._raise()
            try:
                self.queue.put(jobs, timeout=1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        while self.thread.is_alive():
            try:
                self.queue.put(None, timeout=1)
                break
            except queue.Full:
                continue
        self.thread.join()
        shutil.rmtree(self.dir, ignore_errors=True)
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"loading failed: {self.error}") from self.error

    def _run(self) -> None:
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            while (jobs := self.queue.get()) is not None:
                for name, path, count in jobs:
                    columns = ", ".join(f"`{c}`" for c in LAYOUTS[name][0])
                    cursor.execute(
                        f"LOAD DATA LOCAL INFILE %s INTO TABLE `{name}` CHARACTER SET utf8mb4"
                        " FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\'"
                        f" LINES TERMINATED BY '\\n' ({columns})", (path,))
                    loaded = cursor.rowcount
                    cursor.execute("SHOW COUNT(*) WARNINGS")
                    warnings = int(cursor.fetchone()[0])
                    if loaded != count or warnings:
                        cursor.execute("SHOW WARNINGS LIMIT 5")
                        raise RuntimeError(f"{name}: {loaded} of {count} rows loaded, "
                                           f"{warnings} warnings: {cursor.fetchall()}")
                    raw.commit()
                    os.unlink(path)
        except BaseException as exc:  # handed to the main thread
            self.error = exc
            while True:  # unblock the producer
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    break
        finally:
            raw.close()


def _sqlite_writer(engine: Engine) -> tuple[Callable[[dict[str, list[str]]], None],
                                            Callable[[], None]]:
    raw = engine.raw_connection()
    cursor = raw.cursor()

    def put(chunk: dict[str, list[str]]) -> None:
        for name, lines in chunk.items():
            columns = LAYOUTS[name][0]
            cursor.executemany(
                f"INSERT INTO {name} ({', '.join(columns)}) "  # noqa: S608 (our names)
                f"VALUES ({', '.join('?' * len(columns))})",
                (line.split("\t") for line in lines))
        raw.commit()

    def close() -> None:
        cursor.close()
        raw.close()

    return put, close


def _build_indexes(engine: Engine, say: Callable[[str], None]) -> None:
    """The big tables' schema indexes, two tables at a time, then ANALYZE TABLE."""
    work: queue.Queue[sa.Table] = queue.Queue()
    for table in sorted(BIG_TABLES, key=lambda t: t.name != "tblinvoices"):
        work.put(table)
    errors: list[BaseException] = []

    def run() -> None:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            while True:
                try:
                    table = work.get_nowait()
                except queue.Empty:
                    return
                started = time.monotonic()
                ddl = _add_indexes_ddl(engine, table)
                if ddl:
                    cursor.execute(ddl)
                cursor.execute(f"ANALYZE TABLE {table.name}")
                cursor.fetchall()
                raw.commit()
                say(f"  indexes + analyze {table.name}: {time.monotonic() - started:.1f} s")
        except BaseException as exc:
            errors.append(exc)
        finally:
            raw.close()

    threads = [threading.Thread(target=run, name=f"gen_whmcs-index-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    inspector = sa.inspect(engine)
    for table in BIG_TABLES:
        have = {index["name"] for index in inspector.get_indexes(table.name)}
        want = {index.name for index in table.indexes}
        if not want <= have:
            raise RuntimeError(f"{table.name}: indexes {sorted(want - have)} missing")


def _chunks(clients: int) -> Iterator[tuple[int, int]]:
    for first in range(1, clients + 1, CHUNK_CLIENTS):
        yield first, min(CHUNK_CLIENTS, clients + 1 - first)


def generate(url: str, clients: int, *, seed: int = 1, today: date = DEFAULT_TODAY,
             progress: bool = False) -> dict[str, int]:
    """Wipe the sandbox WHMCS tables at ``url`` and fill them with ``clients`` clients;
    returns the rows written per table. Raises :class:`Refused` for a MariaDB database whose
    name contains neither "bench" nor "test"."""
    check_target(url)
    mysql = _is_mysql(url)

    def say(text: str) -> None:
        if progress:
            print(text, file=sys.stderr, flush=True)

    started = time.monotonic()
    if mysql:
        _prepare_mysql_server(url, say)
        engine = _mysql_engine(url)
    else:
        engine = make_whmcs_engine(url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        counts = _reference_rows(engine)
        if mysql:  # secondary indexes are built after the load
            with engine.begin() as conn:
                for table in BIG_TABLES:
                    for index in table.indexes:
                        conn.execute(sa.schema.DropIndex(index))
            loader = MariaDbLoader(engine)
            put, close = loader.put, loader.close
        else:
            put, close = _sqlite_writer(engine)
        generator = Generator(seed, today, sqlite=not mysql)
        totals = {table.name: 0 for table in BIG_TABLES}
        every = max(1, (clients // CHUNK_CLIENTS) // 20)
        try:
            for n, (first, count) in enumerate(_chunks(clients), 1):
                chunk = generator.chunk(first, count)
                for name, lines in chunk.items():
                    totals[name] += len(lines)
                put(chunk)
                if n % every == 0 or first + count > clients:
                    say(f"  {first + count - 1:,}/{clients:,} clients, "
                        f"{totals['tblinvoices']:,} invoices, "
                        f"{time.monotonic() - started:.1f} s")
        finally:
            close()
        if mysql:
            say(f"  loaded in {time.monotonic() - started:.1f} s; building indexes")
            _build_indexes(engine, say)
        counts.update(totals)
        return counts
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--today", type=date.fromisoformat, default=DEFAULT_TODAY)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.clients < 0:
        parser.error("--clients must be >= 0")
    try:
        check_target(args.url)
    except Refused as exc:
        print(f"gen_whmcs: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    counts = generate(args.url, args.clients, seed=args.seed, today=args.today,
                      progress=not args.quiet)
    elapsed = time.monotonic() - started
    if not args.quiet:
        target = make_url(args.url).render_as_string(hide_password=True)
        print(f"{target}: {args.clients:,} clients, seed {args.seed}, "
              f"as of {args.today.isoformat()} ({datetime.now():%Y-%m-%d %H:%M})")
        for name, rows in counts.items():
            print(f"  {name:<22} {rows:>12,} rows")
        print(f"elapsed {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers for the admin page tests that run over a whole installation (tests/world.py): making
clients in the sandbox WHMCS and reading what a page lists."""

from __future__ import annotations

import html
import re

from tests.world import World

CLIENT_LINK = re.compile(r'href="/admin/clients/(\d+)"')
FLASH = re.compile(r'<p class="flash flash-(\w+)" role="status">(.*?)</p>', re.S)


def customer(w: World, name: str, *, group: int, due: str = "2026-10-28",
             amount: str = "89.90", paid: str | None = None,
             language: str = "") -> tuple[int, int, int]:
    """A client (since 2020) with one monthly service and its invoice due on ``due``; paid on
    ``paid`` (a date) or unpaid; returns (client, service, invoice). ``language`` is the
    client's WHMCS language (``portuguese-br``; empty: WHMCS's default). No hook fires:
    vipgate has not seen the client yet."""
    with w.sandbox.quiet():
        client = w.sandbox.add_client(name, "Silva", groupid=group, datecreated="2020-01-15",
                                      language=language)
        service = w.sandbox.add_service(client, due, "Monthly", amount)
        invoice = w.sandbox.add_invoice(client, due, [("Hosting", service, "Plano", amount)],
                                        status="Paid" if paid else "Unpaid",
                                        datepaid=f"{paid} 10:00:00" if paid else None)
    return client, service, invoice


def reconcile(w: World, *client_ids: int) -> None:
    """Reconcile these clients as a worker would (under their leases)."""
    for client_id in client_ids:
        assert w.worker.acquire(client_id)
        try:
            w.engine.reconcile_client(client_id)
        finally:
            w.worker.release(client_id)


def listed(page: str) -> list[int]:
    """The client ids a page links to, in order, once each."""
    seen: list[int] = []
    for found in CLIENT_LINK.findall(page):
        if int(found) not in seen:
            seen.append(int(found))
    return seen


def flashes(page: str) -> list[tuple[str, str]]:
    """The flashed messages on a page: (category, text)."""
    return [(kind, html.unescape(" ".join(text.split()))) for kind, text in FLASH.findall(page)]


def text(page: str) -> str:
    """The page's text with entities decoded and whitespace collapsed (tags kept)."""
    return html.unescape(" ".join(page.split()))

"""The admin page's inbox: tabs by state with counts, each event's error and payload; retry
now and discard with a reason (POST, CSRF, audited, refused when the event changed
meanwhile); a dead letter retried from the page is processed by the worker afterwards."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from bridge.store import Store
from bridge.store import inbox as queue
from tests.admin_helpers import ADMIN, AdminSession
from tests.test_engine import vip_client
from tests.test_inbox_admin import LEASE, NOW, _row, in_state
from tests.world import World, make_world, wall


@pytest.fixture
def admin(app: Flask) -> AdminSession:
    return AdminSession(app)


def inbox_audit(store: Store) -> list[Any]:
    return [e for e in store.audit_log() if e.action.startswith("inbox_")]


def test_each_tab_lists_its_events_with_counts_last_error_and_payload(
        admin: AdminSession, store: Store) -> None:
    ids = {state: in_state(store, state) for state in ("dead", "retrying", "done")}
    ids["queued"] = in_state(store, "queued")
    page = admin.text("/admin/inbox?state=dead")
    dead = _row(store, ids["dead"])
    assert f'<code class="event-id">{dead.webhook_id}</code>' in page
    assert "InvoicePaid" in page and 'href="/admin/clients/7">#7</a>' in page
    assert "poison" in page  # the last error
    assert '<details class="payload"><summary>payload</summary><pre>{\n  &#34;n&#34;: 0\n}' \
        in page
    assert 'Dead <span class="badge badge-bad">1</span>' in page
    for state in ("queued", "retrying", "done", "processing", "discarded"):
        count = 0 if state in ("processing", "discarded") else 1
        assert f'state={state}"' in page and f">{count}</span>" in page
    assert page.count("Retry now") == 1 and page.count(">Discard</button>") == 1
    retrying = admin.text("/admin/inbox?state=retrying")
    assert "WHMCS unreachable" in retrying and "Retry now" in retrying
    queued = admin.text("/admin/inbox?state=queued")
    assert "Retry now" not in queued and ">Discard</button>" in queued
    done = admin.text("/admin/inbox?state=done")
    assert _row(store, ids["done"]).webhook_id in done
    assert "Retry now" not in done and ">Discard</button>" not in done
    assert "No processing events." in admin.text("/admin/inbox?state=processing")


def test_the_dead_letters_open_first_and_an_unknown_tab_is_not_found(
        admin: AdminSession, store: Store) -> None:
    in_state(store, "queued")
    assert 'state=queued" class="inbox-tab" aria-current="page"' in admin.text("/admin/inbox")
    in_state(store, "dead")
    assert 'aria-current="page">Dead' in admin.text("/admin/inbox")
    assert "No inbox state" in admin.text("/admin/inbox?state=bogus", status=404)


@pytest.mark.parametrize("state", ["dead", "retrying"])
def test_retry_now_queues_the_event_and_audits_it(admin: AdminSession, store: Store,
                                                  state: str) -> None:
    rid = in_state(store, state)
    before = _row(store, rid)
    answer = admin.post(f"/admin/inbox/{rid}/retry", {"state": state})
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/admin/inbox?state={state}")
    after = _row(store, rid)
    assert (after.state, after.attempts, after.last_error) == ("queued", 0, before.last_error)
    [entry] = inbox_audit(store)
    assert (entry.actor, entry.action, entry.client_id, entry.before, entry.after) == (
        ADMIN, "inbox_retry", 7, f"{state}, {before.attempts} attempts", "queued")
    assert entry.reasons[:2] == (before.webhook_id, "InvoicePaid")
    assert "is queued again" in admin.text(answer.headers["Location"])


@pytest.mark.parametrize("state", ["queued", "retrying", "dead"])
def test_discard_with_a_reason_keeps_the_event_as_discarded_and_audits_it(
        admin: AdminSession, store: Store, state: str) -> None:
    rid = in_state(store, state)
    webhook_id = _row(store, rid).webhook_id
    answer = admin.post(f"/admin/inbox/{rid}/discard",
                        {"state": state, "reason": "  client deleted in WHMCS  "})
    assert answer.status_code == 302
    row = _row(store, rid)
    assert row.state == "discarded"
    assert row.last_error.startswith(f"discarded by {ADMIN}: client deleted in WHMCS")
    [entry] = inbox_audit(store)
    assert (entry.action, entry.before, entry.after, entry.reasons) == (
        "inbox_discard", state, "discarded", (webhook_id, "InvoicePaid",
                                              "client deleted in WHMCS"))
    listed = admin.text("/admin/inbox?state=discarded")
    assert webhook_id in listed and "client deleted in WHMCS" in listed
    assert ">Discard</button>" not in listed


@pytest.mark.parametrize(("reason", "message"), [
    ("", "Say why the event is discarded."),
    ("   ", "Say why the event is discarded."),
    ("x" * 201, "At most 200 characters."),
])
def test_discard_without_a_good_reason_shows_the_message_next_to_the_field(
        admin: AdminSession, store: Store, reason: str, message: str) -> None:
    rid = in_state(store, "dead")
    before = tuple(_row(store, rid))
    answer = admin.post(f"/admin/inbox/{rid}/discard", {"state": "dead", "reason": reason})
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    field = page[page.index(f'<label for="reason-{rid}">'):]
    assert field.index(f'<small class="error" role="alert">{message}</small>') < \
        field.index("</div>")
    assert 'class="field has-error"' in page
    assert tuple(_row(store, rid)) == before and inbox_audit(store) == []


@pytest.mark.parametrize(("action", "data"), [
    ("retry", {"state": "dead"}),
    ("discard", {"state": "dead", "reason": "forged"}),
])
def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
        admin: AdminSession, store: Store, action: str, data: dict[str, str]) -> None:
    rid = in_state(store, "dead")
    before = tuple(_row(store, rid))
    answer = admin.client.post(f"/admin/inbox/{rid}/{action}", data=data)
    assert answer.status_code == 400
    assert "Form expired or forged" in answer.get_data(as_text=True)
    assert tuple(_row(store, rid)) == before and inbox_audit(store) == []


@pytest.mark.parametrize(("action", "data"), [
    ("retry", {"state": "retrying"}),
    ("discard", {"state": "retrying", "reason": "stuck"}),
])
def test_an_event_a_worker_took_meanwhile_is_left_alone_and_the_admin_told(
        admin: AdminSession, store: Store, action: str, data: dict[str, str]) -> None:
    rid = in_state(store, "retrying")
    [held] = queue.claim(store, "worker-1", NOW + timedelta(days=1), lease=LEASE)
    assert held.id == rid
    before = tuple(_row(store, rid))
    answer = admin.post(f"/admin/inbox/{rid}/{action}", data)
    assert answer.status_code == 302
    assert tuple(_row(store, rid)) == before and inbox_audit(store) == []
    page = html.unescape(admin.text(answer.headers["Location"]))
    assert f"Event {held.webhook_id} changed meanwhile: it was retrying, it is now " \
           "processing. Nothing was done" in page


@pytest.mark.parametrize(("actual", "action", "data", "message"), [
    ("queued", "retry", {"state": "queued"}, "Only a dead or retrying event can be retried"),
    ("done", "retry", {"state": "done"}, "Only a dead or retrying event can be retried"),
    ("done", "discard", {"state": "done", "reason": "x"},
     "Only a queued, retrying or dead event can be discarded"),
    ("dead", "discard", {"state": "processing", "reason": "x"},
     "Only a queued, retrying or dead event can be discarded"),
])
def test_an_action_the_state_does_not_allow_is_refused(
        admin: AdminSession, store: Store, actual: str, action: str, data: dict[str, str],
        message: str) -> None:
    rid = in_state(store, actual)
    before = tuple(_row(store, rid))
    answer = admin.post(f"/admin/inbox/{rid}/{action}", data)
    assert answer.status_code == 302
    assert message in html.unescape(admin.text(answer.headers["Location"]))
    assert tuple(_row(store, rid)) == before and inbox_audit(store) == []


@pytest.mark.parametrize("action", ["retry", "discard"])
def test_an_unknown_event_is_not_found(admin: AdminSession, action: str) -> None:
    answer = admin.post(f"/admin/inbox/999/{action}", {"state": "dead", "reason": "x"})
    assert answer.status_code == 404


# --- end to end: the worker takes a retried dead letter -----------------------------------


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    with make_world(database_url, tmp_path) as w:
        yield w


def test_a_dead_letter_retried_from_the_page_is_processed_by_the_worker(world: World) -> None:
    w = world
    assert w.app is not None
    ana, _, _ = vip_client(w, "Ana")  # overdue past the grace: should leave VIP
    w.sandbox.update_client(ana, firstname="Ana Maria")  # ClientEdit → the inbox
    [row] = queue.claim(w.store, "crashed-worker", wall(), lease=LEASE)
    assert queue.fail(w.store, row.id, "crashed-worker", wall(), "boom",
                      permanent=True) == "dead"
    assert w.drain() == [] and w.group(ana) == w.vip
    admin = AdminSession(w.app)
    assert row.webhook_id in admin.text("/admin/inbox?state=dead")
    assert admin.post(f"/admin/inbox/{row.id}/retry", {"state": "dead"}).status_code == 302
    outcomes = w.drain()
    assert [(o.row_id, o.state) for o in outcomes][:1] == [(row.id, "done")]
    assert w.group(ana) == w.regular
    assert w.store.get_event(row.webhook_id).state == "done"  # type: ignore[union-attr]
    assert [e.action for e in w.store.audit_log()].count("inbox_retry") == 1

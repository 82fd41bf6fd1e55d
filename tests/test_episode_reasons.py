"""Staff tag a delinquency episode's reason (issue 19 item 3): the pure check, the store's
one-transaction write (tag, ``reason_tagged`` action, audit row), re-tagging, and how the
audit row reads in pt_BR and English. On SQLite and on MariaDB."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from flask import Flask

from bridge.i18n import Texts
from bridge.policy import episodes as ep
from bridge.store import Store
from tests.admin_helpers import ADMIN, AdminSession
from tests.admin_world import flashes, text

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)
TODAY = date(2026, 11, 2)


def _open(store: Store, client_id: int = 7) -> int:
    store.record(client_id, [], ep.EpisodeStep(opening=ep.Opening(
        NOW, TODAY, Decimal("80.00"), "R$ ", "", {5: Decimal("80.00")})), NOW)
    [episode] = store.episodes(client_id)
    return episode.id


# --- the pure check ---------------------------------------------------------------------------


@pytest.mark.parametrize(("reason", "note", "tag"), [
    ("boleto", None, ep.ReasonTag("boleto", "")),
    (" financial ", "  lost his job  ", ep.ReasonTag("financial", "lost his job")),
    ("other", "moved abroad", ep.ReasonTag("other", "moved abroad")),
    ("dispute", "x" * ep.REASON_NOTE_MAX, ep.ReasonTag("dispute", "x" * ep.REASON_NOTE_MAX)),
])
def test_a_reason_tag_is_checked(reason: str, note: str | None, tag: ep.ReasonTag) -> None:
    assert ep.check_reason(reason, note) == tag


@pytest.mark.parametrize(("reason", "note", "field", "says"), [
    ("", "", "reason", "Choose a reason."),
    (None, "a note", "reason", "Choose a reason."),
    ("lazy", "", "reason", "lazy is not one of the reasons"),
    ("other", "   ", "note", 'the reason "other" needs one'),
    ("other", None, "note", 'the reason "other" needs one'),
    ("service", "x" * (ep.REASON_NOTE_MAX + 1), "note", "At most 500 characters (501 written)"),
])
def test_a_bad_reason_tag_names_its_field(reason: str | None, note: str | None, field: str,
                                          says: str) -> None:
    with pytest.raises(ep.ReasonTagError) as raised:
        ep.check_reason(reason, note)
    assert raised.value.field == field and says in str(raised.value.message)


def test_every_reason_has_a_name_in_both_languages() -> None:
    assert ep.REASONS == ("boleto", "financial", "service", "dispute", "other")
    pt, en = Texts("pt_BR"), Texts("en")
    for reason in ep.REASONS:
        assert en.episode_reason(reason) != pt.episode_reason(reason)
    assert pt.episode_reason("boleto") == "esqueceu ou perdeu o boleto"
    assert en.episode_reason("boleto") == "forgot or lost the boleto"


# --- the store --------------------------------------------------------------------------------


def test_tagging_writes_the_tag_its_action_and_the_audit_row(store: Store) -> None:
    episode_id = _open(store)
    assert store.tag_reason(7, episode_id, ep.check_reason("boleto", ""), "maria", NOW) is None
    [episode] = store.episodes(7)
    assert (episode.reason, episode.reason_note) == ("boleto", None)
    assert [(a.kind, a.actor, a.detail) for a in episode.actions] == [
        ("reason_tagged", "maria", "boleto")]
    [row] = store.recent_audit(7)
    assert (row.action, row.actor, row.before, row.after) == (
        "episode_reason", "maria", None, "boleto")
    assert [str(r) for r in row.reasons] == [
        f"episode #{episode_id}, opened 2026-11-02: forgot or lost the boleto"]
    pt = Texts("pt_BR")
    assert pt.audit_action(row.action) == "motivo do episódio marcado"
    assert pt.audit_value(row.action, row.after) == "esqueceu ou perdeu o boleto"
    assert [pt.reason(r) for r in row.reasons] == [
        f"episódio #{episode_id}, aberto em 02/11/2026: esqueceu ou perdeu o boleto"]


def test_re_tagging_replaces_the_tag_and_is_audited_again(store: Store) -> None:
    episode_id = _open(store)
    store.tag_reason(7, episode_id, ep.check_reason("boleto", ""), "maria", NOW)
    later = NOW + timedelta(hours=1)
    before = store.tag_reason(7, episode_id, ep.check_reason("other", "moved abroad"), "joao",
                              later)
    assert before == ep.ReasonTag("boleto", "")
    [episode] = store.episodes(7)
    assert (episode.reason, episode.reason_note) == ("other", "moved abroad")
    assert [(a.kind, a.detail) for a in episode.actions] == [
        ("reason_tagged", "boleto"), ("reason_tagged", "other: moved abroad")]
    newest, oldest = store.recent_audit(7)
    assert (newest.actor, newest.before, newest.after) == ("joao", "boleto", "other")
    assert [str(r) for r in newest.reasons][1:] == ["note: moved abroad"]
    assert oldest.after == "boleto"
    en = Texts("en")
    assert (en.audit_value(newest.action, newest.before),
            en.audit_value(newest.action, newest.after)) == ("forgot or lost the boleto",
                                                             "other")
    store.tag_reason(7, episode_id, ep.check_reason("other", "moved to Portugal"), "joao", later)
    assert [str(r) for r in store.recent_audit(7)[0].reasons][1:] == [
        "note: moved to Portugal", "the note was: moved abroad"]


def test_an_episode_of_another_client_is_not_tagged(store: Store) -> None:
    episode_id = _open(store, 7)
    with pytest.raises(LookupError):
        store.tag_reason(8, episode_id, ep.check_reason("dispute", ""), "maria", NOW)
    with pytest.raises(LookupError):
        store.tag_reason(7, episode_id + 1000, ep.check_reason("dispute", ""), "maria", NOW)
    [episode] = store.episodes(7)
    assert episode.reason is None and episode.actions == ()
    assert store.recent_audit(7) == [] and store.recent_audit(8) == []


# --- the admin page ---------------------------------------------------------------------------


def _reason_cell(page: str, episode_id: int) -> str:
    """The reason cell of one episode on the client page (text)."""
    cell = text(page).split(f'action="/admin/clients/7/episodes/{episode_id}/reason"')[0]
    return cell.rsplit('<td class="episode-reason">', 1)[1]


def test_staff_tag_and_re_tag_an_episode_on_the_client_page(app: Flask, store: Store) -> None:
    episode_id = _open(store)
    admin = AdminSession(app)
    page = admin.text("/admin/clients/7")
    assert "forgot or lost the boleto" in page and 'name="csrf_token"' in page
    path = f"/admin/clients/7/episodes/{episode_id}/reason"
    answer = admin.post(path, {"reason": "financial", "note": "lost his job"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(
        "/admin/clients/7#episodes")
    page = admin.text("/admin/clients/7")
    assert ("message", f"Reason of episode #{episode_id} saved: financial trouble.") in \
        flashes(page)
    shown = text(page)
    assert "<strong>financial trouble</strong>: lost his job" in shown
    assert '<option value="financial" selected>' in shown
    admin.post(path, {"reason": "service", "note": ""})
    page = admin.text("/admin/clients/7")
    assert ("message", f"Reason of episode #{episode_id} changed: financial trouble → unhappy "
            "with the service or support.") in flashes(page)
    assert "reason tagged (alice)" in text(page)  # the episode's actions
    history = text(page).split("<h2>History</h2>")[1]
    assert "episode reason tagged" in history
    assert "financial trouble → unhappy with the service or support" in history
    assert [(e.actor, e.before, e.after) for e in store.recent_audit(7)] == [
        (ADMIN, "financial", "service"), (ADMIN, None, "financial")]


@pytest.mark.parametrize(("data", "field", "says"), [
    ({"reason": "", "note": "x"}, "reason", "Choose a reason."),
    ({"reason": "lazy", "note": ""}, "reason", "lazy is not one of the reasons"),
    ({"reason": "other", "note": "  "}, "note", 'Write a note: the reason "other" needs one.'),
    ({"reason": "dispute", "note": "x" * 501}, "note", "At most 500 characters (501 written)."),
])
def test_a_bad_reason_is_refused_naming_the_field_and_nothing_is_stored(
        app: Flask, store: Store, data: dict[str, str], field: str, says: str) -> None:
    episode_id = _open(store)
    admin = AdminSession(app)
    answer = admin.post(f"/admin/clients/7/episodes/{episode_id}/reason", data)
    assert answer.status_code == 400
    cell = _reason_cell(answer.get_data(as_text=True), episode_id)
    # the form (next in the page) shows the error beside its field
    form = text(answer.get_data(as_text=True)).split(
        f'action="/admin/clients/7/episodes/{episode_id}/reason"')[1].split("</form>")[0]
    errored = form.split('has-error">')[1]
    assert errored.split("</div>")[0].count(f'name="{field}"') == 1
    assert f'role="alert">{says}' in errored
    assert "<strong>" not in cell  # no tag shown
    [episode] = store.episodes(7)
    assert episode.reason is None and episode.actions == ()
    assert store.recent_audit(7) == []


def test_the_reason_form_reads_in_portuguese(app: Flask, store: Store) -> None:
    episode_id = _open(store)
    admin = AdminSession(app, language="pt_BR")
    path = f"/admin/clients/7/episodes/{episode_id}/reason"
    refused = admin.post(path, {"reason": "other", "note": ""})
    assert refused.status_code == 400
    assert 'Escreva uma observação: o motivo "outro" exige uma.' in text(
        refused.get_data(as_text=True))
    admin.post(path, {"reason": "boleto"})
    page = admin.text("/admin/clients/7")
    assert ("message", f"Motivo do episódio #{episode_id} salvo: esqueceu ou perdeu o "
            "boleto.") in flashes(page)
    assert "motivo do episódio marcado" in text(page)


def test_tagging_needs_the_csrf_token_and_an_episode_of_the_client(app: Flask,
                                                                   store: Store) -> None:
    episode_id = _open(store)
    admin = AdminSession(app)
    refused = admin.client.post(f"/admin/clients/7/episodes/{episode_id}/reason",
                                data={"reason": "boleto"})
    assert refused.status_code == 400
    assert admin.post(f"/admin/clients/8/episodes/{episode_id}/reason",
                      {"reason": "boleto"}).status_code == 404
    assert store.episodes(7)[0].reason is None and store.recent_audit(7) == []
    # the page's language switch comes back here after a refused form: the client's page
    went = admin.get(f"/admin/clients/7/episodes/{episode_id}/reason")
    assert went.status_code == 302 and went.headers["Location"].endswith(
        "/admin/clients/7#episodes")

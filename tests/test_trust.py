"""Trust unlock (issue 19 item 5): the pure policy (every refusal, which services, the yearly
limit), the form's token, the ``trust_unlock`` records on SQLite and MariaDB, the settings and
the banner's HTML. The whole flow through the real PHP stub and the sandbox WHMCS:
``tests/test_trust_world.py``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from bridge.i18n import Texts
from bridge.model import AuditEntry, CachedStanding, OverdueInvoice
from bridge.panels.view import PanelFacts, TrustFacts, home_banner
from bridge.policy import episodes as ep
from bridge.policy import trust
from bridge.settings import ConfigError, PanelSettings, TrustSettings, load_settings
from bridge.signing import check_trust_token, trust_token
from bridge.store import Store
from bridge.store.audit import AuditFilter
from tests.helpers import OTHER_SECRET, SECRET

TODAY = date(2026, 12, 7)
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
ON = TrustSettings(enabled=True, days=3, max_per_year=2)


def svc(id_: int, status: str = "Suspended", reason: str = "", override: bool = False,
        until: date | None = None) -> trust.ServiceView:
    return trust.ServiceView(id_, status, reason, override, until)


def decide(settings: TrustSettings = ON, *, suspended: bool = True, episode_id: int | None = 7,
           actions: tuple[ep.Action, ...] = (), unlocked_on: tuple[date, ...] = (),
           services: list[trust.ServiceView] | None = None,
           today: date = TODAY) -> trust.Offer | trust.Refusal:
    return trust.decide(settings, suspended=suspended, episode_id=episode_id,
                        episode_actions=actions, unlocked_on=unlocked_on, services=services,
                        today=today)


# --- the policy ---------------------------------------------------------------------------------


def test_an_offer_unlocks_for_the_days_set() -> None:
    assert decide() == trust.Offer(date(2026, 12, 10))
    assert decide(TrustSettings(True, 1, 2)) == trust.Offer(date(2026, 12, 8))
    offer = decide(services=[svc(3), svc(1, reason="Overdue on Payment")])
    assert offer == trust.Offer(date(2026, 12, 10), (1, 3))


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"settings": TrustSettings(False, 3, 2)}, trust.OFF),
    ({"episode_id": None}, trust.NOT_SUSPENDED),
    ({"suspended": False}, trust.NOT_SUSPENDED),
    ({"actions": (ep.Action(ep.UNLOCKED_BY_TRUST, NOW, "client", None, "2026-12-01"),)},
     trust.ALREADY_UNLOCKED),
    ({"unlocked_on": (date(2026, 3, 1), date(2026, 9, 1))}, trust.YEARLY_LIMIT),
    ({"services": [svc(1, "Active"), svc(2, reason="Abuse"), svc(3, override=True)]},
     trust.NOTHING_TO_UNLOCK),
    ({"services": []}, trust.NOTHING_TO_UNLOCK),
])
def test_every_refusal_has_its_reason(kwargs: dict[str, object], code: str) -> None:
    refused = decide(**kwargs)  # type: ignore[arg-type]
    assert isinstance(refused, trust.Refusal) and refused.code == code
    assert refused.reason.msgid and Texts("pt_BR").reason(refused.reason) != str(refused.reason)


def test_once_per_episode_comes_before_the_standing() -> None:
    """Unlocked, the client reads as overdue (its services Active): pressing again is
    "already unlocked", not "not suspended"."""
    unlocked = (ep.Action(ep.UNLOCKED_BY_TRUST, NOW, "client", None, "2026-12-10"),)
    refused = decide(suspended=False, actions=unlocked)
    assert isinstance(refused, trust.Refusal) and refused.code == trust.ALREADY_UNLOCKED
    other = (ep.Action(ep.SUSPENDED, NOW, "whmcs"), ep.Action(ep.PROMISE, NOW, "staff"))
    assert isinstance(decide(actions=other), trust.Offer)


def test_only_services_whmcs_suspended_for_non_payment_without_staffs_override() -> None:
    services = [svc(1), svc(2, reason="Overdue on Payment"), svc(3, reason="Abuse"),
                svc(4, "Active"), svc(5, override=True, until=date(2026, 12, 31)),
                svc(6, override=True), svc(7, "Terminated"), svc(8, reason=" ")]
    offer = decide(services=services)
    assert isinstance(offer, trust.Offer) and offer.service_ids == (1, 2, 8)


def test_the_yearly_limit_counts_the_last_365_days_and_says_when_it_frees_up() -> None:
    # two unlocks: 8 Dec 2025 (364 days ago) and 1 Jun 2026
    days = (date(2025, 12, 8), date(2026, 6, 1))
    refused = decide(unlocked_on=days)
    assert isinstance(refused, trust.Refusal) and refused.code == trust.YEARLY_LIMIT
    assert refused.frees_on == date(2026, 12, 8)  # the older one leaves the window tomorrow
    assert "2026-12-08" in Texts("en").reason(refused.reason)
    assert "08/12/2026" in Texts("pt_BR").reason(refused.reason)
    # tomorrow it is 365 days old: it no longer counts
    assert isinstance(decide(unlocked_on=days, today=date(2026, 12, 8)), trust.Offer)
    # a limit of 3 allows the third; older unlocks never count
    assert isinstance(decide(TrustSettings(True, 3, 3), unlocked_on=days), trust.Offer)
    assert isinstance(decide(unlocked_on=(date(2025, 1, 1), date(2025, 6, 1))), trust.Offer)
    # three in the window with a limit of 2: frees up when the second oldest leaves
    three = (date(2026, 1, 10), date(2026, 2, 10), date(2026, 3, 10))
    refused = decide(unlocked_on=three)
    assert isinstance(refused, trust.Refusal)
    assert refused.frees_on == date(2026, 2, 10) + timedelta(days=365)
    assert trust.counted([date(2025, 12, 7), date(2025, 12, 8)], TODAY) == [date(2025, 12, 8)]


def test_the_episode_action_carries_the_until_date_as_iso() -> None:
    action = trust.unlock_action(NOW, date(2026, 12, 10))
    assert (action.kind, action.actor, action.detail, action.at) == (
        "unlocked_by_trust", "client", "2026-12-10", NOW)
    reasons = trust.audit_reasons(date(2026, 12, 10), (4, 9), (5,))
    assert "2026-12-10" in reasons[0] and "#4, #9" in reasons[0] and "#5" in reasons[1]


# --- the form's token ---------------------------------------------------------------------------


def test_the_token_is_the_clients_for_the_day_by_the_shared_secret() -> None:
    token = trust_token(SECRET, 42, TODAY)
    assert check_trust_token([SECRET], 42, token, TODAY)
    assert check_trust_token([SECRET], 42, token, TODAY + timedelta(days=1))  # near midnight
    assert not check_trust_token([SECRET], 42, token, TODAY + timedelta(days=2))
    assert not check_trust_token([SECRET], 43, token, TODAY)  # another client
    assert not check_trust_token([OTHER_SECRET], 42, token, TODAY)  # another secret
    assert check_trust_token([OTHER_SECRET, SECRET], 42, token, TODAY)  # rotation
    for forged in ("", None, token[:-1], token + "x", "x" * 200):
        assert not check_trust_token([SECRET], 42, forged, TODAY)


# --- settings -----------------------------------------------------------------------------------


def test_settings_default_off_and_bad_values_name_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(environ={})
    assert settings.trust == TrustSettings(enabled=False, days=3, max_per_year=2)
    path = tmp_path / "vipgate.ini"
    for key, value, expected in (("days", "0", "from 1 to 30"), ("days", "31", "from 1 to 30"),
                                 ("max_per_year", "13", "from 1 to 12"),
                                 ("enabled", "maybe", "on or off")):
        path.write_text(f"[trust]\n{key} = {value}\n")
        with pytest.raises(ConfigError) as caught:
            load_settings(path, environ={})
        assert f"[trust] {key}" in str(caught.value) and expected in str(caught.value)
    path.write_text("[trust]\nenabled = on\ndays = 30\nmax_per_year = 12\n")
    assert load_settings(path, environ={}).trust == TrustSettings(True, 30, 12)


# --- storage (SQLite and MariaDB) ---------------------------------------------------------------


def _open_episode(store: Store, client_id: int) -> int:
    step = ep.EpisodeStep(opening=ep.Opening(NOW, TODAY, Decimal("89.90"), "R$ ", "", {1: Decimal(
        "89.90")}), actions=(ep.Action(ep.SUSPENDED, NOW, "whmcs"),))
    store.record(client_id, [], step, NOW)
    opened = store.open_episode(client_id)
    assert opened is not None
    return opened.id


def _entry(client_id: int, until: date) -> AuditEntry:
    return AuditEntry(NOW, "client", trust.AUDIT_ACTION, client_id, None, None,
                      until.isoformat(), trust.audit_reasons(until, (11,)))


def test_an_unlock_is_recorded_once_per_episode_with_its_action_and_audit(store: Store) -> None:
    episode_id = _open_episode(store, 42)
    until = date(2026, 12, 10)
    first = store.begin_unlock(42, episode_id, until, (11, 12), NOW, TODAY)
    assert first is not None
    assert store.begin_unlock(42, episode_id, until, (11,), NOW, TODAY) is None  # second
    assert store.unlock_days(42) == [TODAY]  # a pending unlock counts already
    assert store.active_unlock(42) is None  # not applied yet
    store.finish_unlock(first, (11,), trust.unlock_action(NOW, until), _entry(42, until))
    [record] = store.episodes(42)
    assert [(a.kind, a.actor, a.detail) for a in record.actions] == [
        ("suspended", "whmcs", ""), ("unlocked_by_trust", "client", "2026-12-10")]
    [audited] = list(store.iter_audit(AuditFilter(client_id=42, action="trust_unlock")))
    assert audited.after == "2026-12-10" and "#11" in audited.reasons[0]
    active = store.active_unlock(42)
    assert active is not None and (active.until, active.service_ids, active.state) == (
        until, (11,), "applied")
    assert store.open_episode_actions(42) == (episode_id, list(record.actions))
    [waiting] = store.unlocks_to_settle()
    assert waiting.id == first and waiting.episode_ended_on is None
    store.clear_unlock(first, "expired", NOW)
    assert store.active_unlock(42) is None and store.unlocks_to_settle() == []
    [done] = store.client_unlocks(42)
    assert (done.outcome, done.cleared_at) == ("expired", NOW)
    assert store.unlock_days(42) == [TODAY]  # still counts against the yearly limit


def test_a_failed_unlock_frees_the_episode_and_does_not_count(store: Store) -> None:
    episode_id = _open_episode(store, 43)
    until = date(2026, 12, 10)
    failed = store.begin_unlock(43, episode_id, until, (21,), NOW, TODAY)
    assert failed is not None
    store.fail_unlock(failed, NOW)
    assert store.unlock_days(43) == [] and store.unlocks_to_settle() == []
    again = store.begin_unlock(43, episode_id, until, (21,), NOW, TODAY)
    assert again is not None  # the client may try again
    # a failure that left an override set waits for the regular pass to lift it
    store.fail_unlock(again, NOW, (21,))
    [left] = store.unlocks_to_settle()
    assert (left.id, left.state, left.service_ids) == (again, "failed", (21,))
    assert [a.kind for a in store.episodes(43)[0].actions] == ["suspended"]


def test_unlocks_to_settle_carry_their_episodes_end(store: Store) -> None:
    episode_id = _open_episode(store, 44)
    unlock_id = store.begin_unlock(44, episode_id, date(2026, 12, 10), (31,), NOW, TODAY)
    assert unlock_id is not None
    store.finish_unlock(unlock_id, (31,), trust.unlock_action(NOW, date(2026, 12, 10)),
                        _entry(44, date(2026, 12, 10)))
    opened = store.open_episode(44)
    assert opened is not None
    ending = ep.Ending(NOW, TODAY, ep.PAID_UP, Decimal("89.90"), 0)
    store.record(44, [], ep.EpisodeStep(ending=ending), NOW)
    [row] = store.unlocks_to_settle()
    assert (row.episode_ended_on, row.episode_how) == (TODAY, "paid")


# --- the banner ---------------------------------------------------------------------------------


def _standing(kind: str) -> CachedStanding:
    return CachedStanding(42, kind, 12, Decimal("89.90"),
                          (OverdueInvoice(1042, "1042", Decimal("89.90"), "2026-11-25"),),
                          "R$ ", "", None, NOW.replace(tzinfo=None), kind)


def test_the_banner_offers_the_button_with_the_form_and_terms() -> None:
    facts = PanelFacts(42, _standing("suspended"),
                       trust=TrustFacts(3, offer_until=date(2026, 12, 10), token="tok-en"))
    html = home_banner(facts, PanelSettings(), language="en")
    assert '<form method="post" action="clientarea.php"' in html
    assert 'name="vipgate_action" value="trust_unlock"' in html
    assert 'name="vipgate_token" value="tok-en"' in html
    assert '<input type="hidden" name="token" value="" data-vipgate-csrf>' in html
    assert "Unlock my services for 3 days" in html and "2026-12-11" in html
    pt = home_banner(facts, PanelSettings(), language="pt_BR")
    assert "Desbloquear meus serviços por 3 dias" in pt and "11/12/2026" in pt
    one = home_banner(PanelFacts(42, _standing("suspended"), trust=TrustFacts(
        1, offer_until=date(2026, 12, 8), token="t")), PanelSettings(), language="en")
    assert "Unlock my services for 1 day<" in one


def test_the_banner_while_unlocked_says_until_when_and_keeps_the_pay_links() -> None:
    facts = PanelFacts(42, _standing("suspended"),
                       trust=TrustFacts(3, unlocked_until=date(2026, 12, 10)))
    html = home_banner(facts, PanelSettings(), language="en")
    assert "Your services are unlocked until 2026-12-10" in html
    assert "viewinvoice.php?id=1042" in html and "<form" not in html
    assert "alert-warning" in html  # no longer the suspended banner
    pt = home_banner(facts, PanelSettings(), language="pt_BR")
    assert "10/12/2026" in pt and "desbloqueados" in pt


def test_the_banner_shows_a_refusal_and_no_button_without_an_offer() -> None:
    refusal = trust.decide(ON, suspended=True, episode_id=7, episode_actions=(),
                           unlocked_on=(date(2026, 3, 1), date(2026, 9, 1)), services=None,
                           today=TODAY)
    assert isinstance(refusal, trust.Refusal)
    facts = PanelFacts(42, _standing("suspended"), trust=TrustFacts(3, notice=refusal.reason))
    html = home_banner(facts, PanelSettings(), language="en")
    assert "2027-03-01" in html and "<form" not in html
    plain = home_banner(PanelFacts(42, _standing("suspended")), PanelSettings(), language="en")
    assert "<form" not in plain and "vipgate-trust" not in plain
    # a token is needed for the button
    tokenless = PanelFacts(42, _standing("suspended"),
                           trust=TrustFacts(3, offer_until=date(2026, 12, 10)))
    assert "<form" not in home_banner(tokenless, PanelSettings(), language="en")

"""The English that was left in Portuguese (issue 18 item 3): the audit values of an inbox
retry or discard, a cancelled promise, a snapshot and a reconcile; a discard's note in the
inbox; WTForms' own field errors; the overview's settings source; the charts' numbers; and on
the command line the confirmation prompts, a password typed twice and click's usage errors.
Each fails if the English comes back; the stored values stay as they were (the CSV, the
action filter, older rows)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import click
import pytest
from click.testing import CliRunner
from flask import Flask

from bridge.cli.common import confirm, prompt_twice
from bridge.cli.main import main
from bridge.i18n import Texts
from bridge.model import AuditEntry, WhmcsNames
from bridge.store import Store
from tests.admin_helpers import AdminSession
from tests.admin_world import flashes
from tests.helpers import FIXED_NOW
from tests.test_inbox_admin import in_state

# --- the audit log's values ------------------------------------------------------------------


@pytest.mark.parametrize(("language", "values"), [
    ("pt_BR", {"dead, 1 attempts": "morto, 1 tentativa",
               "retrying, 2 attempts": "em nova tentativa, 2 tentativas",
               "dead, 0 attempts": "morto, 0 tentativa",  # pt: 0 is singular
               "queued": "na fila", "discarded": "descartado"}),
    ("en", {"dead, 1 attempts": "dead, 1 attempt",
            "retrying, 2 attempts": "retrying, 2 attempts", "queued": "queued"}),
])
def test_an_inbox_retrys_and_discards_values_with_plural_attempts(
        language: str, values: dict[str, str]) -> None:
    t = Texts(language)
    assert {v: t.audit_value("inbox_retry", v) for v in values} == values
    assert t.audit_value("inbox_discard", "queued") == values["queued"]
    assert t.audit_value("inbox_retry", "odd, three attempts") == "odd, three attempts"


def test_a_reconcile_a_cancelled_promise_and_a_snapshot_read_in_portuguese() -> None:
    t = Texts("pt_BR")
    names = WhmcsNames({1: "VIP", 2: "Clientes"})
    assert t.audit_value("reconcile", "nothing to change") == "nada a mudar"
    assert t.audit_value("reconcile", "group 1 -> 2; ticket #40 priority Low -> High; "
                                      "ticket #41 staff note", names) == (
        "grupo VIP (#1) -> Clientes (#2); ticket #40: prioridade Baixa -> Alta; "
        "ticket #41: nota para a equipe")
    assert t.audit_value("reconcile", "failed: WHMCS did not answer") == (
        "falhou: WHMCS did not answer")  # WHMCS's error as it came
    assert t.audit_value("reconcile", "something else") == "something else"
    assert t.audit_value("promise_cancel", "until 2026-11-28") == "até 28/11/2026"
    assert t.audit_value("snapshot", "2026-11-21") == "21/11/2026"
    assert Texts("en").audit_value("reconcile", "group 1 -> 2", names) == (
        "group VIP (#1) -> Clientes (#2)")


def test_a_reconciles_stored_changes_read_as_the_engines_summaries() -> None:
    """What the admin's reconcile stores (``Reconciled.summary``: the English text of each
    ``Change.summary``) reads as those summaries read in Portuguese: a message changed in
    bridge/engine/plan.py without its reading here fails."""
    from bridge.admin.membership import Reconciled
    from bridge.engine.plan import Change

    names = WhmcsNames({1: "VIP", 2: "Clientes"})
    done = Reconciled(applied=[Change("group", 7, None, "1", "2", ()),
                               Change("ticket_priority", 7, 40, "Medium", "Low", ()),
                               Change("ticket_note", 7, 41, None, "k", (), "note")])
    t = Texts("pt_BR")
    assert t.audit_value("reconcile", done.summary, names) == "; ".join(
        t.reason(c.summary, names) for c in done.applied)
    assert t.audit_value("reconcile", Reconciled().summary) == "nada a mudar"


def test_an_inbox_retry_and_discard_on_the_audit_page_and_the_inbox_in_portuguese(
        app: Flask, store: Store) -> None:
    dead, queued = in_state(store, "dead"), in_state(store, "queued")
    admin = AdminSession(app, language="pt_BR")
    assert admin.post(f"/admin/inbox/{dead}/retry", {"state": "dead"}).status_code == 302
    assert admin.post(f"/admin/inbox/{queued}/discard",
                      {"state": "queued", "reason": "duplicado"}).status_code == 302
    audit = html.unescape(admin.text("/admin/audit"))
    assert "morto, 1 tentativa → na fila" in audit and "na fila → descartado" in audit
    assert "1 attempt" not in audit and "→ queued" not in audit and "queued →" not in audit
    [retried] = [e for e in store.audit_log() if e.action == "inbox_retry"]
    assert retried.before == "dead, 1 attempts"  # stored as it was: the CSV, older rows
    inbox = html.unescape(admin.text("/admin/inbox?state=discarded"))
    assert "descartado por alice: duplicado" in inbox and "discarded by" not in inbox
    english = html.unescape(AdminSession(app, name="bob").text("/admin/inbox?state=discarded"))
    assert "discarded by alice: duplicado" in english


def test_a_discard_note_keeps_the_workers_error_as_it_was_written() -> None:
    t = Texts("pt_BR")
    assert t.inbox_error("discarded by bob: dup\nlast error: WHMCS unreachable") == (
        "descartado por bob: dup\núltimo erro: WHMCS unreachable")
    assert t.inbox_error("discarded by bob: dup") == "descartado por bob: dup"
    assert t.inbox_error("WhmcsUnavailable: timeout") == "WhmcsUnavailable: timeout"
    assert Texts("en").inbox_error("discarded by bob: dup\nlast error: x") == (
        "discarded by bob: dup\nlast error: x")


# --- the admin page's forms and words --------------------------------------------------------


def test_wtforms_own_field_errors_read_in_portuguese(app: Flask) -> None:
    """WTForms' messages come from its own catalogs (its ``pt``, through Flask-WTF and the
    page's locale); vipgate's forms give their own messages where WTForms' read badly."""
    pt = AdminSession(app, language="pt_BR")
    answer = pt.post("/admin/promises", {"client_id": "abc", "until": "soon", "note": "x"})
    page = html.unescape(answer.get_data(as_text=True))
    assert answer.status_code == 400
    assert "O valor inteiro não é válido." in page and "A data não é válida." in page
    assert "Not a valid" not in page
    en = AdminSession(app, name="bob", language="en")
    page = en.post("/admin/promises", {"client_id": "abc", "until": "soon", "note": "x"}
                   ).get_data(as_text=True)
    assert "Not a valid integer value." in page and "Not a valid date value." in page


def test_a_refused_login_and_membership_form_in_portuguese(settings, store: Store,
                                                          clock) -> None:
    from bridge.web.app import create_app

    app = create_app(settings, store=store, clock=clock)  # [bridge] language: pt_BR
    client = app.test_client()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"',
                      client.get("/admin/login").get_data(as_text=True))
    assert token
    answer = client.post("/admin/login", data={"csrf_token": token.group(1), "name": "",
                                               "password": "x" * 1025})
    page = html.unescape(answer.get_data(as_text=True))
    assert answer.status_code == 400
    assert "Informe o nome da conta." in page and "No máximo 1024 caracteres." in page
    assert "This field" not in page and "Field cannot" not in page
    admin = AdminSession(app, language="pt_BR")
    answer = admin.post("/admin/clients/7/membership", {"action": "bogus", "reason": "x" * 201})
    shown = [text for _kind, text in flashes(admin.text(answer.headers["Location"]))]
    assert "Nada mudou: Ação: Escolha inválida.; Motivo (opcional): No máximo 200 caracteres." \
        in shown


def test_the_overview_names_the_embedded_defaults_in_portuguese(app: Flask) -> None:
    page = AdminSession(app, language="pt_BR").text("/admin/")
    assert "dos padrões embutidos" in page and "embedded defaults" not in page
    assert "from the embedded defaults" in AdminSession(app, name="bob").text("/admin/")


def test_the_charts_numbers_in_the_readers_language() -> None:
    pt, en = Texts("pt_BR"), Texts("en")
    assert [pt.compact(v) for v in (0, 12.5, 999, 1500, 2000, 2_500_000)] == [
        "0", "12,50", "999", "1,5\xa0mil", "2\xa0mil", "2,5\xa0mi"]
    assert [en.compact(v) for v in (12.5, 1500, 2_500_000)] == ["12.50", "1.5K", "2.5M"]
    assert (pt.plain(1234), en.plain(1234)) == ("1.234", "1,234")


def test_the_dashboards_axis_in_portuguese(app: Flask, store: Store) -> None:
    from tests.test_admin_dashboard import put, snap

    put(store, 1, "overdue", days=4, total="2500.00", due="2026-11-17")
    snap(store, FIXED_NOW.date() - timedelta(days=1))
    snap(store, FIXED_NOW.date())
    page = AdminSession(app, language="pt_BR").text("/admin/dashboard")
    amount = page.split('id="chart-amount"', 1)[1].split("</svg>", 1)[0]
    assert re.search(r">\d+(,\d)?\xa0mil</text>", amount), amount
    assert not re.search(r">\d+(\.\d)?[kK]</text>", amount)


def test_the_audit_pages_snapshot_and_cancelled_promise_in_portuguese(
        app: Flask, store: Store) -> None:
    store.add_audit([
        AuditEntry(FIXED_NOW, "alice", "snapshot", None, None, None, "2026-11-21", ()),
        AuditEntry(FIXED_NOW, "alice", "promise_cancel", 7, None, "until 2026-11-28", None,
                   ()),
        AuditEntry(FIXED_NOW, "alice", "reconcile", 7, None, None, "nothing to change", ())])
    page = html.unescape(AdminSession(app, language="pt_BR").text("/admin/audit"))
    assert "— → 21/11/2026" in page and "até 28/11/2026 → —" in page
    assert "— → nada a mudar" in page
    assert "until 2026" not in page and "nothing to change" not in page


# --- the command line ------------------------------------------------------------------------


def _asking(answers: str, env: dict[str, str], default: bool = False) -> tuple[bool, str]:
    """confirm() in a command, with ``answers`` typed."""
    @click.command()
    def ask() -> None:
        click.echo("yes" if confirm("Aplicar?", default=default) else "no")

    result = CliRunner().invoke(ask, input=answers, env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    return lines[-1] == "yes", "\n".join(lines[:-1])


PT = {"LANG": "pt_BR.UTF-8", "VIPGATE_LANGUAGE": ""}
EN = {"LANG": "C.UTF-8", "VIPGATE_LANGUAGE": ""}


@pytest.mark.parametrize(("answer", "expected"), [
    ("s", True), ("sim", True), ("S", True), ("y", True), ("yes", True),
    ("n", False), ("não", False), ("nao", False), ("NÃO", False), ("no", False), ("", False),
])
def test_a_confirmation_in_portuguese_reads_s_and_sim(answer: str, expected: bool) -> None:
    said, shown = _asking(answer + "\n", PT)
    assert said is expected
    assert shown.startswith("Aplicar? [s/N]: ")


def test_a_confirmation_asks_again_after_another_answer_in_its_language() -> None:
    said, shown = _asking("talvez\nsim\n", PT)
    assert said and "Erro: responda s ou n." in shown and "[y/N]" not in shown
    said, shown = _asking("maybe\nsim\ny\n", EN)
    assert said and shown.startswith("Aplicar? [y/N]: ")
    assert shown.count("Error: answer y or n.") == 2  # "sim" is not English
    said, shown = _asking("\n", PT, default=True)
    assert said and shown.startswith("Aplicar? [S/n]: ")


def test_a_confirmation_aborts_at_the_end_of_input() -> None:
    @click.command()
    def ask() -> None:
        confirm("Aplicar?")

    assert CliRunner().invoke(ask, input="", env=PT).exit_code == 1  # click.Abort


def test_a_password_typed_twice_differently_is_asked_again_in_portuguese() -> None:
    @click.command()
    def ask() -> None:
        click.echo("got " + prompt_twice("Senha", "Repita para confirmar"))

    result = CliRunner().invoke(ask, input="one\ntwo\nthree\nthree\n", env=PT)
    assert result.exit_code == 0
    assert "Erro: os dois valores são diferentes; digite-os de novo." in result.output
    assert "do not match" not in result.output and result.output.endswith("got three\n")


@pytest.mark.parametrize(("args", "portuguese", "english"), [
    (["--bogus"], "vipgate: A opção '--bogus' não existe.",
     "vipgate: No such option '--bogus'."),
    (["serve", "--prot", "1"],
     "vipgate: A opção '--prot' não existe. (Você quis dizer: '--host', '--port'?)",
     "vipgate: No such option '--prot'. (Did you mean one of: '--host', '--port'?)"),
    (["db", "upgrde"], "vipgate: O comando 'upgrde' não existe. Você quis dizer 'upgrade'?",
     "vipgate: No such command 'upgrde'. Did you mean 'upgrade'?"),
    (["admin", "create-user"], "vipgate: Falta o argumento 'NAME'.",
     "vipgate: Missing argument 'NAME'."),
])
def test_clicks_usage_errors_in_the_clis_language(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str],
        portuguese: str, english: str) -> None:
    for env, expected in ((PT, portuguese), (EN, english)):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(SystemExit) as stopped:
            main(args)
        assert stopped.value.code == 2
        assert capsys.readouterr().err.splitlines() == [expected]


def test_a_bare_group_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["db"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.startswith("Usage: vipgate db [OPTIONS] COMMAND")

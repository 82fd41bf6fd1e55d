"""The CLI's language: ``VIPGATE_LANGUAGE`` (pt_BR or en), else the POSIX locale (LC_ALL, then
LC_MESSAGES, then LANG), else English; one language per line in what the commands and the demo
print, money and dates in that language's format.

The language of a line is told by the catalog: the fixed parts of the CLI's and the demo's
messages (their msgids, English) and of their Portuguese translations."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from click.testing import CliRunner

from bridge.cli.common import cli_language, locale_language
from bridge.cli.main import cli
from bridge.i18n import translations
from tests.world import make_world

ROOT = Path(__file__).resolve().parent.parent
# Where the CLI's and the demo's own messages are.
SOURCES = [*sorted((ROOT / "bridge" / "cli").glob("*.py")),
           *sorted((ROOT / "bridge" / "demo").glob("*.py")),
           ROOT / "bridge" / "web" / "serving.py"]
PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]")


def _parts(text: str, other: str) -> set[str]:
    """The fixed parts of ``text`` long enough to tell a language (a few words), absent from
    ``other``, the same message in the other language."""
    return {p.strip() for p in PLACEHOLDER.split(text)
            if len(p.strip()) >= 12 and " " in p.strip() and p.strip() not in other}


@cache
def fragments() -> tuple[frozenset[str], frozenset[str]]:
    """(English parts, Portuguese parts) of the CLI's and the demo's messages."""
    catalog = translations("pt_BR")
    english: set[str] = set()
    portuguese: set[str] = set()
    for source in SOURCES:
        for _line, message, _comments, context in extract_from_file(
                "python", str(source), keywords=DEFAULT_KEYWORDS):
            if context is not None:
                pairs = [(message, catalog.upgettext(context, message))]
            elif isinstance(message, tuple):
                pairs = [(message[0], catalog.ungettext(message[0], message[1], 1)),
                         (message[1], catalog.ungettext(message[0], message[1], 2))]
            else:
                pairs = [(message, catalog.ugettext(message))]
            for msgid, translated in pairs:
                assert translated != msgid or not _parts(msgid, ""), msgid  # translated
                english |= _parts(msgid, translated)
                portuguese |= _parts(translated, msgid)
    return frozenset(english), frozenset(portuguese)


def english_lines(text: str) -> list[str]:
    english, _ = fragments()
    return [line for line in text.splitlines() if any(f in line for f in english)]


def portuguese_lines(text: str) -> list[str]:
    _, portuguese = fragments()
    return [line for line in text.splitlines() if any(f in line for f in portuguese)]


def vipgate(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command in a subprocess, with exactly these language variables."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith("VIPGATE_") and k not in ("LANG", "LC_ALL", "LC_MESSAGES")}
    return subprocess.run([sys.executable, "-m", "bridge", *args], cwd=cwd,
                          env={**environment, **env}, capture_output=True, text=True,
                          timeout=120, check=False)


PT = {"LANG": "pt_BR.UTF-8"}
EN_OVER_PT = {"LANG": "pt_BR.UTF-8", "VIPGATE_LANGUAGE": "en"}


# --- which language -------------------------------------------------------------------------


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, "en"),
    ({"LANG": "C"}, "en"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({"LANG": "POSIX"}, "en"),
    ({"LANG": "pt_BR.UTF-8"}, "pt_BR"),
    ({"LANG": "pt_PT.UTF-8"}, "pt_BR"),
    ({"LANG": "pt"}, "pt_BR"),
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LANG": "de_DE.UTF-8"}, "en"),
    ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "pt_BR.UTF-8"}, "pt_BR"),
    ({"LANG": "pt_BR.UTF-8", "LC_MESSAGES": "C"}, "en"),
    ({"LC_MESSAGES": "pt_BR.UTF-8", "LC_ALL": "en_GB.UTF-8"}, "en"),
    ({"LC_ALL": "", "LANG": "pt_BR.UTF-8"}, "pt_BR"),  # an empty variable counts as unset
    ({"VIPGATE_LANGUAGE": "en", "LC_ALL": "pt_BR.UTF-8"}, "en"),
    ({"VIPGATE_LANGUAGE": "pt_BR", "LANG": "C"}, "pt_BR"),
    ({"VIPGATE_LANGUAGE": "", "LANG": "pt_BR.UTF-8"}, "pt_BR"),
])
def test_vipgate_language_else_the_posix_locale_else_english(environ: dict[str, str],
                                                             expected: str) -> None:
    assert cli_language(environ) == expected


def test_locale_names() -> None:
    assert [locale_language(n) for n in ("pt_BR.UTF-8@euro", "pt-BR", "PT_br", "english")] == [
        "pt_BR", "pt_BR", "pt_BR", "en"]


@pytest.mark.parametrize(("env", "expected"), [
    ({"VIPGATE_LANGUAGE": "fr", "LANG": "C.UTF-8"},
     "vipgate: VIPGATE_LANGUAGE = 'fr': expected pt_BR or en (or leave it unset to follow "
     "LC_ALL, LC_MESSAGES and LANG)"),
    ({"VIPGATE_LANGUAGE": "pt-br", "LANG": "pt_BR.UTF-8"},
     "vipgate: VIPGATE_LANGUAGE = 'pt-br': esperado pt_BR ou en (ou deixe sem valor para "
     "seguir LC_ALL, LC_MESSAGES e LANG)"),
])
def test_a_bad_vipgate_language_is_one_line_naming_it(tmp_path: Path, env: dict[str, str],
                                                      expected: str) -> None:
    done = vipgate("db", "upgrade", cwd=tmp_path, env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [expected]
    assert list(tmp_path.iterdir()) == []  # refused before anything was done


# --- the commands ---------------------------------------------------------------------------


def test_a_config_error_in_either_language(tmp_path: Path) -> None:
    (tmp_path / "vipgate.ini").write_text("[policy]\ngrace = 3\n")
    pt = vipgate("check", cwd=tmp_path, env=PT)
    assert pt.returncode == 2
    assert pt.stderr.splitlines() == [
        "vipgate: erro de configuração: chave desconhecida [policy] grace em vipgate.ini; "
        "esperada uma de " + pt.stderr.split("esperada uma de ", 1)[1].strip()]
    en = vipgate("check", cwd=tmp_path, env=EN_OVER_PT)
    assert en.returncode == 2
    assert en.stderr.startswith("vipgate: config error: unknown key [policy] grace in "
                                "vipgate.ini; expected one of vip_group_id, ")
    missing = vipgate("--config", "nowhere.ini", "check", cwd=tmp_path, env=PT)
    assert missing.stderr.splitlines() == [
        "vipgate: erro de configuração: o arquivo de configuração nowhere.ini não existe"]


def test_check_speaks_the_language_line_by_line(tmp_path: Path) -> None:
    with make_world(f"sqlite:///{tmp_path}/vipgate.db", tmp_path) as w:
        env = {"VIPGATE_BRIDGE_DATABASE_URL": w.settings.bridge.database_url,
               "VIPGATE_WHMCS_URL": w.settings.whmcs.url,
               "VIPGATE_WHMCS_IDENTIFIER": w.settings.whmcs.identifier,
               "VIPGATE_WHMCS_SECRET": w.settings.whmcs.secret,
               "VIPGATE_POLICY_VIP_GROUP_ID": str(w.vip),
               "VIPGATE_POLICY_DEFAULT_GROUP_ID": str(w.regular)}
        pt = vipgate("check", cwd=tmp_path, env={**env, **PT})
        en = vipgate("check", cwd=tmp_path, env={**env, **EN_OVER_PT})
        bad = vipgate("check", cwd=tmp_path, env={**env, **PT,
                                                  "VIPGATE_POLICY_VIP_GROUP_ID": "99"})
    assert pt.returncode == 0 and en.returncode == 0, pt.stdout + pt.stderr
    lines = pt.stdout.splitlines()
    assert lines[:3] == ["configuração: padrões embutidos",
                         "banco de dados: ok (sqlite, revisão "
                         + lines[1].rsplit("revisão ", 1)[1],
                         "stub: ainda sem notícias (ponte " + lines[2].rsplit("ponte ", 1)[1]]
    assert f"whmcs: ok ({env['VIPGATE_WHMCS_URL']})" in lines
    assert lines[-1] == "verificação: ok"
    assert english_lines(pt.stdout) == []
    assert en.stdout.splitlines()[:1] == ["settings: embedded defaults"]
    assert en.stdout.splitlines()[-1] == "check: ok"
    assert portuguese_lines(en.stdout) == []
    assert bad.returncode == 1
    assert bad.stderr.splitlines() == ["vipgate: a verificação falhou: 1 problema"]
    # a text vipgate does not translate yet is quoted in a line of its own language
    for line in bad.stdout.splitlines():
        assert not (english_lines(line) and portuguese_lines(line)), line


def test_a_busy_port_in_portuguese(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        done = vipgate("serve", "--port", str(port), cwd=tmp_path, env=PT)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"vipgate: não foi possível servir em 127.0.0.1:{port}: a porta {port} já está em uso "
        "(outro processo escuta nela; pare-o ou escolha outra --port)"]


# --- the demo's story -----------------------------------------------------------------------

MONEY_PT = re.compile(r"R\$ \d{1,3}(?:\.\d{3})*,\d\d\b")
MONEY_EN = re.compile(r"R\$ \d{1,3}(?:,\d{3})*\.\d\d\b")
DAY_PT = re.compile(r"\b\d\d/\d\d/20\d\d\b")
DAY_EN = re.compile(r"\b20\d\d-\d\d-\d\d\b")

# Lines that quote a text vipgate still makes as an English sentence (a staff note's audit
# reason, the first reconcile's plan in a line): said in English whole, not half and half.
QUOTES_ENGLISH = re.compile(r"^    \w+: ticket #\d+ staff note added \(standing \w+: staff note"
                            r"|^  plan: \d+ clients: ")


@pytest.fixture
def demo_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the demo's folder lands here

    def run(env: dict[str, str]) -> str:
        result = CliRunner().invoke(cli, ["demo", "--no-wait", "--stub", "python"], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    return run


def test_the_demo_story_in_portuguese(demo_in) -> None:  # type: ignore[no-untyped-def]
    text = demo_in(PT)
    assert "✗" not in text
    assert re.search(r"^todas as \d+ verificações passaram$", text, re.MULTILINE)
    assert "demo do vipgate: a história de exemplo, dia a dia, com os padrões embutidos" in text
    assert "── dia 0 · segunda-feira, 02/11/2026 " in text
    assert ("  Carla Mendes  VIP       desde 2016, cliente grande: fatura #3 R$ 1.200,00 vence em "
            "20/10/2026; fatura #4 R$ 450,00 vence em 26/10/2026") in text
    assert ("    Carla: saiu do VIP para Clientes — \"situação em atraso: fatura #3 R$ 1.200,00 "
            "vencida há 13 dias > carência 3; fatura #4 R$ 450,00 vencida há 7 dias > "
            "carência 3\"") in text
    assert "    ✓ o saldo vencido dela é R$ 250,00" in text
    assert "10:00 Bruno abre um ticket em Suporte: \"Site lento\" (Média)" in text
    assert ("      | Sua conta tem faturas vencidas (#2; total R$ 59,90). Enquanto não forem "
            "pagas, só é possível abrir chamados no departamento financeiro.") in text
    assert re.search(r"Fábio Nunes +Revendas +fixado +suspenso \(R\$ 299,00\) +#7 Suspenso",
                     text)
    # one language per line: none of the story's English, but where it quotes English
    assert [line for line in english_lines(text) if not QUOTES_ENGLISH.match(line)] == []
    for line in text.splitlines():
        assert not (english_lines(line) and portuguese_lines(line)), line
    # one money format, one date format
    assert MONEY_PT.search(text) and not MONEY_EN.search(text)
    assert DAY_PT.search(text) and not DAY_EN.search(text)


def test_vipgate_language_en_tells_the_demo_in_english(demo_in) -> None:  # type: ignore[no-untyped-def]
    text = demo_in(EN_OVER_PT)
    assert re.search(r"^all \d+ checks passed$", text, re.MULTILINE)
    assert "── day 0 · Monday, 2026-11-02 " in text
    assert "    ✓ her overdue balance is R$ 250.00" in text
    assert portuguese_lines(text) == []
    assert MONEY_EN.search(text) and not MONEY_PT.search(text)
    assert DAY_EN.search(text) and not DAY_PT.search(text)

"""Settings: file, environment overrides, defaults, and one-line errors naming the key."""

from __future__ import annotations

import configparser
from dataclasses import fields
from decimal import Decimal
from pathlib import Path

import pytest

from bridge import overrides
from bridge.settings import (
    SECTIONS,
    ConfigError,
    declared,
    declared_keys,
    default_settings,
    load_settings,
)
from tests.helpers import SECRET

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.ini"


def test_no_file_means_embedded_defaults(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.source == "embedded defaults"
    assert settings.bridge.database_url == "sqlite:///vipgate.db"
    assert settings.webhook.tolerance_seconds == 300
    assert settings.webhook.max_body_bytes == 65536
    assert settings.tickets.block_when == "suspended"


def test_file_then_environment_override(tmp_path) -> None:
    path = tmp_path / "v.ini"
    path.write_text("[policy]\ngrace_days = 4\nmin_spend = 12.5\n"
                    f"[webhook]\nsecrets = {SECRET}\n[tickets]\nbilling_departments = 4, 2\n")
    settings = load_settings(path, environ={"VIPGATE_POLICY_GRACE_DAYS": "2"})
    assert settings.policy.grace_days == 2
    assert settings.policy.min_spend == Decimal("12.50")
    assert settings.webhook.secrets == (SECRET,)
    assert settings.tickets.billing_departments == (2, 4)
    assert settings.source == str(path)


def test_config_path_from_environment(tmp_path) -> None:
    path = tmp_path / "other.ini"
    path.write_text("[bridge]\nlanguage = en\n")
    assert load_settings(environ={"VIPGATE_CONFIG": str(path)}).bridge.language == "en"


def test_settings_are_frozen() -> None:
    settings = default_settings()
    with pytest.raises(AttributeError):
        settings.policy.grace_days = 9  # type: ignore[misc]


def example_keys() -> dict[tuple[str, str], tuple[str, list[str]]]:
    """config.example.ini's keys: (section, key) -> (the value shown, the comment lines heading
    the block of adjacent keys the key stands in)."""
    found: dict[tuple[str, str], tuple[str, list[str]]] = {}
    section, comment, in_block = "", [], False
    for row in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if row.startswith("["):
            section, comment, in_block = row.strip("[]"), [], False
        elif row.startswith("#"):
            comment = [*comment, row] if not in_block else [row]
            in_block = False
        elif not row.strip():
            comment, in_block = [], False
        else:
            key, _, value = row.partition("=")
            assert (section, key.strip()) not in found, f"[{section}] {key} twice"
            found[(section, key.strip())] = (value.strip(), comment)
            in_block = True
    return found


def test_example_file_documents_every_declared_key_with_its_default_and_loads() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(EXAMPLE, encoding="utf-8")
    assert parser.sections() == list(SECTIONS)
    for section, schema in SECTIONS.items():
        assert set(parser[section]) == set(schema().fields), section
    example = example_keys()
    assert set(example) == {(d.section, d.key) for d in declared_keys()}
    for item in declared_keys():
        shown, comment = example[(item.section, item.key)]
        where = f"[{item.section}] {item.key}"
        assert comment, f"{where} needs a comment"
        # the value shown is the default, or the comment says why not
        assert (item.parser.deserialize(shown) == item.default
                or "not the default" in " ".join(comment)), f"{where} = {shown!r}"
    load_settings(EXAMPLE, environ={})


def test_one_declaration_gives_each_key_its_parser_default_and_texts() -> None:
    defaults = default_settings()
    for name, schema in SECTIONS.items():
        # the dataclass's defaults are what an empty section loads into
        assert schema.dataclass() == getattr(defaults, name) == schema().load({}), name
        assert list(schema().fields) == [f.name for f in fields(schema.dataclass)], name
    editable = set(overrides.editable_keys())
    for item in declared_keys():
        assert declared(item.section, item.key) is item
        assert item.parser.load_default == item.default
        # the admin page shows a label and a help for every key it edits, and only for those
        assert bool(item.label and item.help) == ((item.section, item.key) in editable), item.key
    with pytest.raises(KeyError):
        declared("policy", "grace_day")


@pytest.mark.parametrize(("text", "env", "expected"), [
    ("[policy]\ngrace_days = soon\n", {}, "[policy] grace_days = 'soon'"),
    ("[policy]\ngrace_days = -1\n", {}, "expected a whole number from 0 to 365"),
    ("[policy]\ngrace_day = 3\n", {}, "unknown key [policy] grace_day"),
    ("[polcy]\ngrace_days = 3\n", {}, "unknown section [polcy]"),
    ("", {"VIPGATE_POLICY_MIN_SPEND": "-5"}, "(from VIPGATE_POLICY_MIN_SPEND)"),
    ("", {"VIPGATE_POLICY_GRACE_DAI": "5"}, "unknown key [policy] grace_dai"),
    ("[tickets]\npriority_overdue = Urgent\n", {}, "expected one of Low, Medium, High, keep"),
    ("[tickets]\nblock_when = always\n", {}, "expected one of suspended, overdue, never"),
    ("[tickets]\nbilling_departments = 1, billing\n", {}, "comma-separated WHMCS ids"),
    ("[tickets]\nstaff_note = perhaps\n", {}, "expected on or off"),
    ("[bridge]\ntimezone = Mars/Olympus\n", {}, "IANA time zone"),
    ("[bridge]\nlanguage = fr\n", {}, "expected one of pt_BR, en"),
    ("[bridge]\ndatabase_url = postgres://x\n", {}, "mysql+pymysql://"),
    ("[bridge]\npublic_url = ftp://x\n", {}, "http://"),
    ("[whmcs]\ntimeout_seconds = 0\n", {}, "seconds from 1 to 120"),
    ("[webhook]\nsecrets = abc\n", {}, "whsec_"),
    ("[webhook]\nsecrets = whsec_c2hvcnQ=\n", {}, "24 to 64 random bytes"),
    ("[webhook]\nmax_body_bytes = 10\n", {}, "from 1024 to 1048576"),
    ("[admin]\nlogin_attempts = 0\n", {}, "[admin] login_attempts"),
    ("not an ini file\n", {}, "is not a valid INI file"),
])
def test_bad_settings_stop_with_one_line_naming_the_key(tmp_path, text, env, expected) -> None:
    path = tmp_path / "bad.ini"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=env)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_missing_named_file_is_an_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.ini", environ={})


@pytest.mark.parametrize(("section", "key", "value"), [
    ("webhook", "secrets", "whsec_bm90LWEtc2VjcmV0"),
    ("bridge", "database_url", "postgres://user:hunter2@db/x"),
])
def test_errors_never_repeat_secret_values(tmp_path, monkeypatch, section, key,
                                          value) -> None:
    monkeypatch.chdir(tmp_path)
    env = {f"VIPGATE_{section.upper()}_{key.upper()}": value}
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ=env)
    assert value not in str(caught.value) and "<hidden>" in str(caught.value)


def test_repr_never_shows_secrets() -> None:
    settings = default_settings().replace(
        whmcs={"secret": "api-secret-value", "accesskey": "access-key-value",
               "database_url": "mysql+pymysql://ro:db-password@h/whmcs"},
        webhook={"secrets": SECRET}, admin={"secret_key": "session-key-value"},
        bridge={"database_url": "mysql+pymysql://v:bridge-password@h/vipgate"})
    text = repr(settings)
    for secret in ("api-secret-value", "access-key-value", "db-password", SECRET,
                   "session-key-value", "bridge-password"):
        assert secret not in text

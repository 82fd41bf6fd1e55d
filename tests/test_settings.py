"""Settings: file, environment overrides, defaults, and one-line errors naming the key."""

from __future__ import annotations

import configparser
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.settings import SECTIONS, ConfigError, default_settings, load_settings
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


def test_example_file_documents_every_key_and_loads() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(EXAMPLE)
    for section, schema in SECTIONS.items():
        assert set(parser[section]) == set(schema().fields), section
    lines = EXAMPLE.read_text().splitlines()
    for section, schema in SECTIONS.items():
        for key in schema().fields:
            # a comment heads the block of adjacent keys this key stands in
            index = next(i for i, row in enumerate(lines) if row.startswith(f"{key} ="))
            while lines[index - 1] and not lines[index - 1].startswith(("#", "[")):
                index -= 1
            assert lines[index - 1].startswith("#"), f"[{section}] {key} needs a comment"
    load_settings(EXAMPLE, environ={})


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

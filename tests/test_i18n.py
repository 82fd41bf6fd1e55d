"""vipgate's catalogs (bridge/translations) against the code, and Babel's money and dates.

A message added to the code without ``make translations`` (a stale ``messages.pot``), or left
without its Portuguese translation, fails here."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from bridge import i18n, payloads
from bridge.i18n import Texts

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = ROOT / "bridge" / "translations"

Key = tuple[str | None, str]  # (context, msgid)


def _key(message_id: str | tuple[str, ...], context: str | None) -> Key:
    return context, message_id[0] if isinstance(message_id, tuple) else message_id


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def _in_the_code() -> set[Key]:
    """What ``make translations`` extracts (its --keywords are the two lazy ones)."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "lazy_ngettext": (1, 2)}
    return {_key(message, context) for _f, _l, message, _c, context
            in extract_from_dir(str(ROOT / "bridge"), method_map, options_map,
                                keywords=keywords)}


def _ids(catalog: Catalog) -> set[Key]:
    return {_key(m.id, m.context) for m in catalog if m.id}


def test_the_catalog_template_holds_exactly_the_messages_of_the_code() -> None:
    """``make translations`` was run after the last change of a message."""
    template = _ids(_read(CATALOGS / "messages.pot"))
    code = _in_the_code()
    assert sorted(code - template, key=str) == [], "new messages: run make translations"
    assert sorted(template - code, key=str) == [], "gone messages: run make translations"


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_each_language_has_every_message_of_the_template(language: str) -> None:
    catalog = _read(CATALOGS / language / "LC_MESSAGES" / "messages.po", language)
    assert _ids(catalog) == _ids(_read(CATALOGS / "messages.pot"))


def test_every_message_has_its_portuguese_translation() -> None:
    catalog = _read(CATALOGS / "pt_BR" / "LC_MESSAGES" / "messages.po", "pt_BR")
    untranslated = [m.id for m in catalog if m.id and (
        "fuzzy" in m.flags or not all(m.string if isinstance(m.string, tuple) else
                                      (m.string,)))]
    assert untranslated == []
    # Placeholders (%(name)s) the same in the translation as in the message.
    assert [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()] == []


def test_portuguese_plurals_are_singular_for_zero_and_one() -> None:
    t = Texts("pt_BR")
    assert [t.ngettext("%(num)d invoice", "%(num)d invoices", n) for n in (0, 1, 2)] == [
        "0 fatura", "1 fatura", "2 faturas"]
    e = Texts("en")
    assert [e.ngettext("%(num)d invoice", "%(num)d invoices", n) for n in (0, 1, 2)] == [
        "0 invoices", "1 invoice", "2 invoices"]


def test_a_message_without_translation_reads_in_english() -> None:
    assert Texts("pt_BR").gettext("no such message %(n)s", n=3) == "no such message 3"


@pytest.mark.parametrize(("language", "amount", "prefix", "suffix", "expected"), [
    ("pt_BR", Decimal("1234.56"), "R$ ", "", "R$ 1.234,56"),
    ("en", Decimal("1234.56"), "R$ ", "", "R$ 1,234.56"),
    ("pt_BR", Decimal("1200"), "R$ ", "", "R$ 1.200,00"),
    ("en", Decimal("0.5"), "$", " USD", "$0.50 USD"),
    ("pt_BR", Decimal("-1234567.891"), "", " BRL", "-1.234.567,89 BRL"),
])
def test_money_keeps_the_whmcs_currency_and_takes_the_locales_digits(
        language: str, amount: Decimal, prefix: str, suffix: str, expected: str) -> None:
    assert i18n.format_money(amount, prefix, suffix, language) == expected


@pytest.mark.parametrize(("language", "day", "expected"), [
    ("pt_BR", date(2026, 12, 3), "03/12/2026"),
    ("en", date(2026, 12, 3), "2026-12-03"),
    ("pt_BR", "2026-12-03 10:00:00", "03/12/2026"),
    ("pt_BR", datetime(2026, 12, 3, 23, 59), "03/12/2026"),
])
def test_days_in_the_locale(language: str, day: date | str, expected: str) -> None:
    assert i18n.format_day(day, language) == expected


@pytest.mark.parametrize(("language", "month", "expected"), [
    ("pt_BR", "2026-11", "11/2026"), ("en", "2026-11", "2026-11"), ("pt_BR", "2027-01", "01/2027"),
])
def test_months_in_the_locale(language: str, month: str, expected: str) -> None:
    assert i18n.format_month(month, language) == expected
    assert i18n.Texts(language).month(month) == expected


@pytest.mark.parametrize("month", ["2026-13", "2026-11-02", "nov/2026", ""])
def test_a_month_that_is_not_one_is_refused(month: str) -> None:
    with pytest.raises(ValueError, match="not a month"):
        i18n.format_month(month, "pt_BR")


def test_whmcs_client_statuses_in_the_locale() -> None:
    assert set(i18n.CLIENT_STATUSES) == set(payloads.CLIENT_STATUSES)
    pt, en = i18n.Texts("pt_BR"), i18n.Texts("en")
    assert [pt.client_status(s) for s in ("Active", "Inactive", "Closed")] == [
        "Ativo", "Inativo", "Encerrado"]
    assert [en.client_status(s) for s in ("Active", "Inactive", "Closed")] == [
        "Active", "Inactive", "Closed"]
    assert pt.client_status("Fraud") == "Fraud"  # a status WHMCS may add: as it came


def test_moments_in_the_locale() -> None:
    moment = datetime(2026, 12, 3, 14, 5)
    assert i18n.format_moment(moment, "pt_BR") == "03/12/2026 14:05"
    assert i18n.format_moment(moment, "en") == "2026-12-03 14:05"


def test_an_unknown_language_is_refused_with_the_ones_there_are() -> None:
    with pytest.raises(ValueError, match=r"unknown language 'fr': expected one of pt_BR, en"):
        Texts("fr")


def test_a_compiled_catalog_is_read_when_newer_than_its_source(tmp_path, monkeypatch) -> None:
    """The wheel's .mo (compiled by the build) is what an installation reads; a source tree
    without one compiles the .po in memory."""
    from babel.messages.mofile import write_mo

    folder = tmp_path / "pt_BR" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    source = (CATALOGS / "pt_BR" / "LC_MESSAGES" / "messages.po").read_bytes()
    (folder / "messages.po").write_bytes(source)
    monkeypatch.setattr(i18n, "CATALOGS", tmp_path)
    i18n.translations.cache_clear()
    try:
        assert Texts("pt_BR").gettext("Overdue invoices") == "Faturas vencidas"
        catalog = _read(folder / "messages.po", "pt_BR")
        catalog.get("Overdue invoices").string = "Faturas vencidas (compilado)"
        with (folder / "messages.mo").open("wb") as compiled:
            write_mo(compiled, catalog)
        i18n.translations.cache_clear()
        assert Texts("pt_BR").gettext("Overdue invoices") == "Faturas vencidas (compilado)"
    finally:
        i18n.translations.cache_clear()


def test_a_reason_reads_in_either_language_with_money_plurals_and_group_names() -> None:
    """The policy's reasons are messages with values (``bridge.model.Reason``): the string is
    English (logs, audit log, CLI); ``Texts.reason`` shows it in the reader's language."""
    from bridge.i18n import why
    from bridge.model import GroupRef, Money, WhmcsNames

    def overdue(days: int) -> str:
        return why.ngettext(
            "invoice #%(number)s %(amount)s overdue %(num)d day > grace %(grace)s",
            "invoice #%(number)s %(amount)s overdue %(num)d days > grace %(grace)s", days,
            number="1042", amount=Money(Decimal("1200"), "R$ ", ""), grace=3)

    assert overdue(5) == "invoice #1042 R$ 1,200.00 overdue 5 days > grace 3"
    assert Texts("en").reason(overdue(5)) == overdue(5)
    assert Texts("pt_BR").reason(overdue(5)) == (
        "fatura #1042 R$ 1.200,00 vencida há 5 dias > carência 3")
    assert Texts("pt_BR").reason(overdue(1)) == (
        "fatura #1042 R$ 1.200,00 vencida há 1 dia > carência 3")
    leaves = why.gettext("not in VIP: leaves VIP for group %(group)s", group=GroupRef(2))
    assert leaves == "not in VIP: leaves VIP for group 2"  # as vipgate always logged it
    names = WhmcsNames({2: "Clientes"})
    assert Texts("pt_BR").reason(leaves, names) == (
        "fora do VIP: sai do VIP para o grupo Clientes (#2)")
    assert Texts("en").reason(leaves, WhmcsNames()) == "not in VIP: leaves VIP for group #2"
    # what older versions stored: English text, shown as it is
    assert Texts("pt_BR").reason("standing overdue") == "standing overdue"


def test_a_reason_survives_copy_and_pickle() -> None:
    import copy
    import pickle

    from bridge.i18n import why
    from bridge.model import Money

    reason = why.gettext("paid %(spent)s since %(start)s >= min_spend %(minimum)s",
                         spent=Money(Decimal("10"), "R$ ", ""), start=date(2026, 1, 2),
                         minimum=Money(Decimal("5"), "R$ ", ""))
    for again in (copy.deepcopy(reason), pickle.loads(pickle.dumps(reason))):  # noqa: S301
        assert (again, again.msgid, again.values) == (reason, reason.msgid, reason.values)
        assert Texts("pt_BR").reason(again) == (
            "pagou R$ 10,00 desde 02/01/2026 >= min_spend R$ 5,00")


@pytest.mark.parametrize("amount", ["0", "0.005", "0.015", "0.025", "1", "-1234.5", "89.9",
                                    "1234567.891", "999.995", "1e3", "-0.004"])
def test_english_money_and_days_are_babels_without_babel(amount: str) -> None:
    """The English fast paths (the policy writes every reason in English) give what Babel
    gives for the same patterns."""
    from babel.dates import format_date
    from babel.numbers import format_decimal

    assert i18n.format_money(Decimal(amount), "R$ ", "", "en") == "R$ " + format_decimal(
        Decimal(amount), format=i18n.MONEY_PATTERN, locale="en")
    assert i18n.format_money(float(amount), "", " USD", "en") == format_decimal(
        Decimal(str(float(amount))), format=i18n.MONEY_PATTERN, locale="en") + " USD"
    day = date(2026, 1, 2)
    assert i18n.format_day(day, "en") == format_date(day, "yyyy-MM-dd", locale="en")


def test_a_reason_whose_values_do_not_fit_its_message_shows_its_english_text() -> None:
    from bridge.model import Reason

    broken = Reason("standing overdue: invoice #7", "%(standing)s: %(owed)s", {"owed": "x"})
    assert Texts("pt_BR").reason(broken) == "standing overdue: invoice #7"
    counted = Reason("2 invoices", "%(num)d invoice", {"num": "two"}, "%(num)d invoices")
    assert Texts("pt_BR").reason(counted) == "2 invoices"

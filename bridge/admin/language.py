"""The admin page's language: the signed-in account's choice (``admin_user.language``), else
``[bridge] language``. Flask-Babel asks :func:`page_language` once per request; its
``gettext``/``ngettext`` and the templates' ``_()`` read vipgate's catalogs
(``bridge.i18n``), and the templates format money and dates with the ``money``, ``day`` and
``moment`` filters in that language, the engine's reasons with ``reason`` (group ids by
the WHMCS names given) and a client's WHMCS status with ``client_status``."""

from __future__ import annotations

from decimal import Decimal

from babel.support import Translations
from flask import Flask, flash, g, session
from flask_babel import Babel, Domain, get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.utils import cached_property
from werkzeug.wrappers import Response
from wtforms import SelectField

# types-WTForms (3.2) predates SelectChoice (WTForms 3.3).
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import AnyOf

from bridge import i18n
from bridge.admin.common import back_to, bp, rt


def page_language() -> str:
    """The language of this request's page. Before the login check has run (a form refused
    for its CSRF token), the account is the one the signed session names: only its
    language is read."""
    name = g.get("admin") or session.get("admin")
    chosen = rt().store.admin_language(name) if name else None
    return chosen if chosen in i18n.LANGUAGES else rt().settings.bridge.language


def current() -> i18n.Texts:
    locale = get_locale()
    return i18n.Texts(str(locale) if locale is not None else rt().settings.bridge.language)


class _Catalogs(Domain):
    """Flask-Babel's messages from vipgate's catalogs (a .mo in the wheel, else the .po)."""

    def get_translations(self) -> Translations:
        return i18n.translations(current().language)


class _Babel(Babel):
    @cached_property
    def domain_instance(self) -> Domain:
        return _Catalogs()


def init_babel(app: Flask) -> None:
    _Babel(app, locale_selector=page_language)
    app.jinja_env.filters.update(
        money=lambda amount, prefix="", suffix="": current().money(
            Decimal(str(amount)), prefix, suffix),
        number=lambda value, digits=0: current().number(value, digits),
        day=lambda value: current().day(value) if value else "",
        moment=lambda value: current().moment(value) if value else "",
        client_status=lambda status: current().client_status(status),
        reason=lambda reason, names=None: current().reason(reason, names),
        audit_action=lambda action: current().audit_action(action),
        audit_value=lambda value, action, names=None: current().audit_value(action, value,
                                                                             names))
    app.jinja_env.globals.update(page_language=lambda: current().language,
                                 language_form=LanguageForm)


class LanguageForm(FlaskForm):
    language = SelectField(choices=[SelectChoice("", "")] + [
        SelectChoice(code, name) for code, name in i18n.LANGUAGE_NAMES.items()],
        validators=[AnyOf(("", *i18n.LANGUAGES))])


@bp.route("/language", methods=["POST"])
def language() -> Response:
    """The signed-in account's language; empty follows ``[bridge] language``."""
    form = LanguageForm()
    if form.validate_on_submit():
        rt().store.set_admin_language(g.admin, form.language.data or None)
    else:
        flash(_("Unknown language: choose one of %(names)s.",
                names=", ".join(i18n.LANGUAGES)), "error")
    return back_to("admin.overview")


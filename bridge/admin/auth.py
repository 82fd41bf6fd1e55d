"""Log in and log out. Failed logins are throttled per account name in the database
(``bridge.accounts``); a successful login starts a new session (no fixation)."""

from __future__ import annotations

import logging

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext, ngettext
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from bridge import accounts
from bridge.admin.common import audit, bp, rt, service_now
from bridge.i18n import why

log = logging.getLogger("vipgate.admin")


class LoginForm(FlaskForm):
    name = StringField(lazy_gettext("Account"), validators=[
        InputRequired(lazy_gettext("Enter the account name.")),
        Length(max=64, message=lazy_gettext("At most %(max)s characters.", max=64))])
    password = PasswordField(lazy_gettext("Password"), validators=[
        InputRequired(lazy_gettext("Enter the password.")),
        Length(max=1024, message=lazy_gettext("At most %(max)s characters.", max=1024))])


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    form = LoginForm()
    if form.validate_on_submit():
        result = accounts.login(rt().store, form.name.data or "", form.password.data or "",
                                rt().settings.admin, service_now())
        if result.ok:
            target = request.args.get("next") or ""
            session.clear()
            session.permanent = True
            session["admin"], session["fp"] = result.name, result.fingerprint
            from flask import g
            g.admin = result.name
            audit("admin_login", reasons=(why.gettext("logged in from %(address)s",
                                                      address=str(request.remote_addr)),))
            log.info("admin %s logged in", result.name)
            if not (target.startswith("/admin") and not target.startswith("//")):
                target = url_for("admin.overview")
            return redirect(target)
        if result.locked_until is not None:
            log.warning("admin login locked for account name %r", form.name.data)
            minutes = max(1, -int(-(result.locked_until - service_now().replace(tzinfo=None))
                                  .total_seconds() // 60))
            form.password.errors = [ngettext(
                "Too many failed logins for this account: try again in %(num)d minute.",
                "Too many failed logins for this account: try again in %(num)d minutes.",
                minutes)]
            return render_template("admin/login.html", form=form), 429
        form.password.errors = [_("Wrong account name or password.")]
        return render_template("admin/login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("admin/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    session.clear()
    flash(_("You are logged out."))
    return redirect(url_for("admin.login"))

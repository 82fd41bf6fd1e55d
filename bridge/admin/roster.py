"""Placeholder: replaced by the page's own module."""

from __future__ import annotations

from flask import render_template

from bridge.admin.common import bp


@bp.route("/roster", endpoint="roster")
def view() -> str:
    return render_template("admin/error.html", code=501, title="roster",
                           message="This page is being built.")

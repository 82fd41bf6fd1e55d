"""Placeholder: replaced by the page's own module."""

from __future__ import annotations

from flask import render_template

from bridge.admin.common import bp


@bp.route("/promises", endpoint="promises")
def view() -> str:
    return render_template("admin/error.html", code=501, title="promises",
                           message="This page is being built.")

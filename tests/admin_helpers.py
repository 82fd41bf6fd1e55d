"""Driving the admin page with Flask's test client: an account, a logged-in session, forms
sent with their CSRF token (read from the page, as a browser would)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from bridge import accounts
from bridge.runtime import runtime

ADMIN = "alice"
PASSWORD = "correct horse battery staple"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(html: str) -> str:
    found = TOKEN.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


class AdminSession:
    """A test client logged in as an admin; ``post`` adds the CSRF token of the session."""

    def __init__(self, app: Flask, name: str = ADMIN, password: str = PASSWORD,
                 language: str | None = "en") -> None:
        """``language``: the account's choice of language for the admin page (the tests'
        admin reads English; None follows ``[bridge] language``)."""
        self.app = app
        self.client = app.test_client()
        self.name = name
        with app.app_context():
            store = runtime().store
            if name not in accounts.users(store):
                accounts.create_user(store, name, password, datetime.now(UTC))
            store.set_admin_language(name, language)
        page = self.client.get("/admin/login")
        answer = self.client.post("/admin/login", data={
            "csrf_token": csrf_token(page.get_data(as_text=True)),
            "name": name, "password": password})
        assert answer.status_code == 302, answer.get_data(as_text=True)
        self.token = csrf_token(self.client.get("/admin/").get_data(as_text=True))

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kw)

    def text(self, path: str, status: int = 200) -> str:
        answer = self.get(path)
        assert answer.status_code == status, (answer.status_code,
                                              answer.get_data(as_text=True)[:2000])
        return answer.get_data(as_text=True)

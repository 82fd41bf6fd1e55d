"""vipgate's bridge: the service WHMCS forwards hook events to, and its admin page.

This file imports nothing: ``import bridge.policy`` loads neither Flask nor SQLAlchemy. The
web app is :func:`bridge.web.app.create_app`; the ``vipgate`` command is :mod:`bridge.cli`.
README.md ("Development") shows the packages and what each may import.
"""

# The one place the version is written: setup.cfg reads it (attr:), `vipgate --version`
# prints it, the admin page and `vipgate check` compare it with the stub's.
__version__ = "0.1.0"

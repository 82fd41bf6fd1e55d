"""``vipgate sandbox``: the sandbox WHMCS alone, served over HTTP (the set-up and the
banner are :mod:`bridge.demo.sandbox`'s: the CLI does not import :mod:`bridge.sandbox`)."""

from __future__ import annotations

import click
import sqlalchemy as sa

from bridge.cli.common import Failure, _, cli_language, database_failure, exception_text
from bridge.demo.sandbox import (
    DEFAULT_PORT,
    SANDBOX_DATABASE_URL,
    SandboxSetupError,
    banner,
    prepare_sandbox,
)
from bridge.i18n import Texts


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True,
              type=click.IntRange(0, 65535), help="0 = any free port.")
@click.option("--database-url", default=SANDBOX_DATABASE_URL, show_default=True,
              help="The sandbox's WHMCS-shaped tables.")
@click.option("--seed/--no-seed", default=True, show_default=True,
              help="Seed a small dataset when the database is new.")
@click.option("--bridge-url", default=None, metavar="URL",
              help="Forward hooks to this bridge (its base URL); needs --secret.")
@click.option("--secret", "webhook_secret", default=None, metavar="whsec_...",
              help="Webhook secret the hooks are signed with (one of [webhook] secrets).")
@click.option("--identifier", default=None, help="API identifier (default: generated).")
@click.option("--secret-key", "api_secret", default=None,
              help="API secret for --identifier (default: generated).")
def sandbox_command(host: str, port: int, database_url: str, seed: bool,
                    bridge_url: str | None, webhook_secret: str | None,
                    identifier: str | None, api_secret: str | None) -> None:
    """Run the sandbox WHMCS alone: its API at http://HOST:PORT/includes/api.php."""
    from bridge.web.serving import cannot_serve, port_problem

    language = cli_language()
    busy = port_problem(host, port, language)  # before the database is created and seeded
    if busy:
        raise Failure(busy, 1)
    try:
        setup = prepare_sandbox(database_url, seed=seed, bridge_url=bridge_url,
                                webhook_secret=webhook_secret, identifier=identifier,
                                api_secret=api_secret)
    except SandboxSetupError as exc:
        raise Failure(exception_text(exc), 2) from None
    except sa.exc.SQLAlchemyError as exc:
        raise database_failure(exc, database_url) from None

    bound = False

    def ready(url: str) -> None:
        nonlocal bound
        bound = True
        for line in banner(setup, url, database_url, Texts(language)):
            click.echo(line)

    try:
        setup.serve(host, port, ready=ready)
    except OSError as exc:
        if bound:
            raise
        raise Failure(cannot_serve(host, port, exc, language), 1) from None
    except KeyboardInterrupt:  # werkzeug returns on Ctrl-C; this is in case it does not
        pass
    finally:
        setup.sandbox.dispose()
    click.echo(_("vipgate sandbox: stopped"))

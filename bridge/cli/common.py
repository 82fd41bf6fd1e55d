"""What the ``vipgate`` commands share: the one-line :class:`Failure`, the language they speak
(:func:`cli_language`, :func:`_`), the settings of the invocation and database failures in one
line. The command modules import this one, never the group (:mod:`bridge.cli.main`), so the
package has no import cycle."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any, TypeVar

import click
import sqlalchemy as sa

from bridge.i18n import LANGUAGES, N_, Texts, render_reason
from bridge.model import Reason
from bridge.settings import ConfigError, Settings, load_settings
from bridge.store import DatabaseNotReady

T = TypeVar("T")

LANGUAGE_VARIABLE = "VIPGATE_LANGUAGE"
# The POSIX order: LC_ALL overrides LC_MESSAGES, which overrides LANG; the first set one counts.
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


def locale_language(locale: str) -> str:
    """vipgate's language for a POSIX locale name: ``pt_BR.UTF-8``, ``pt_PT``, ``pt`` →
    ``pt_BR``; ``en_US.UTF-8``, ``C``, ``POSIX`` and every other language → ``en``."""
    language = locale.split(".", 1)[0].split("@", 1)[0].replace("-", "_").split("_", 1)[0]
    return "pt_BR" if language.lower() == "pt" else "en"


def posix_language(environ: Mapping[str, str]) -> str:
    """The language of the POSIX locale (LC_ALL, else LC_MESSAGES, else LANG), English when
    none is set."""
    locale = next((environ[v] for v in LOCALE_VARIABLES if environ.get(v)), "")
    return locale_language(locale) if locale else "en"


def cli_language(environ: Mapping[str, str] | None = None) -> str:
    """The language of the CLI's messages: ``VIPGATE_LANGUAGE`` (``pt_BR`` or ``en``) when set,
    else the POSIX locale's. A ``VIPGATE_LANGUAGE`` of another value is a :class:`Failure`
    (exit 2), said in the locale's language."""
    env = os.environ if environ is None else environ
    chosen = env.get(LANGUAGE_VARIABLE, "")
    if not chosen or chosen in LANGUAGES:
        return chosen or posix_language(env)
    raise Failure(Texts(posix_language(env)).gettext(
        "%(variable)s = %(value)s: expected pt_BR or en (or leave it unset to follow LC_ALL, "
        "LC_MESSAGES and LANG)", variable=LANGUAGE_VARIABLE, value=repr(chosen)), 2)


def texts() -> Texts:
    """The CLI's language now (read from the environment at each message; a bad
    ``VIPGATE_LANGUAGE`` reads as the locale's, the command group refuses it first)."""
    try:
        return Texts(cli_language())
    except Failure:
        return Texts(posix_language(os.environ))


def _(message: str, **values: object) -> str:
    """``message`` (an English msgid with ``%(name)s`` placeholders) in the CLI's language."""
    return texts().gettext(message, **values)


def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
    """A count's message in the CLI's language (``%(num)d`` is ``n``)."""
    return texts().ngettext(singular, plural, n, **values)


# The answers confirm() takes, by language: a Brazilian types s/sim (and n/não); y/yes and no
# are taken in Portuguese too (the answers of every other command-line program).
YES = {"pt_BR": ("s", "sim", "y", "yes"), "en": ("y", "yes")}
NO = {"pt_BR": ("n", "não", "nao", "no"), "en": ("n", "no")}


def confirm(question: str, default: bool = False, err: bool = True) -> bool:
    """``question [s/N]:`` in the CLI's language (``[y/N]`` in English; ``[S/n]``, ``[Y/n]``
    when ``default`` is True), read as click.confirm reads it: an empty answer is
    ``default``, another answer is asked again, Ctrl-C and the end of input abort
    (``click.Abort``)."""
    t = texts()
    choices = (t.pgettext("confirmation answers", "Y/n") if default else
               t.pgettext("confirmation answers", "y/N"))
    while True:
        answer = str(click.prompt(question, default="", show_default=False, err=err,
                                  prompt_suffix=f" [{choices}]: ")).strip().lower()
        if answer in YES[t.language]:
            return True
        if answer in NO[t.language]:
            return False
        if answer == "":
            return default
        click.echo(t.gettext("Error: answer %(yes)s or %(no)s.",
                             yes=YES[t.language][0], no=NO[t.language][0]), err=err)


def prompt_twice(label: str, again: str, err: bool = True) -> str:
    """A hidden value typed twice (a password), asked again until both match; click's own
    confirmation_prompt says its mismatch in English."""
    while True:
        value = str(click.prompt(label, hide_input=True, err=err))
        if str(click.prompt(again, hide_input=True, err=err)) == value:
            return value
        click.echo(_("Error: the two values differ; type them again."), err=err)


def _did_you_mean(possibilities: list[str] | None) -> str:
    if not possibilities:
        return ""
    return " " + ngettext("Did you mean %(choices)s?", "(Did you mean one of: %(choices)s?)",
                          len(possibilities),
                          choices=", ".join(repr(p) for p in sorted(possibilities)))


def usage_message(exc: click.ClickException) -> str | None:
    """click's usage errors an operator meets most (an unknown command or option, a missing
    argument or option) in the CLI's language, with the same words as click's in English;
    None for the others (click's text, English: ``Invalid value for '--port': ...`` quotes
    its type's English reason)."""
    no_such_command = getattr(click.exceptions, "NoSuchCommand", None)  # click >= 8.4
    if isinstance(exc, click.NoSuchOption) and exc.message == click.NoSuchOption(
            exc.option_name).message:  # click's own message, not one a command gave
        return _("No such option %(name)s.", name=repr(exc.option_name)) + _did_you_mean(
            exc.possibilities)
    if no_such_command is not None and isinstance(exc, no_such_command):
        return _("No such command %(name)s.", name=repr(exc.command_name)) + _did_you_mean(
            exc.possibilities)
    if isinstance(exc, click.MissingParameter) and not exc.message:
        hint = exc.param_hint or (exc.param.get_error_hint(exc.ctx)
                                  if exc.param is not None and exc.ctx is not None else None)
        hints = hint if isinstance(hint, str) or hint is None else " / ".join(
            repr(h) for h in hint)
        kind = exc.param_type or (exc.param.param_type_name if exc.param else "parameter")
        if hints is None or kind not in ("argument", "option"):
            return None
        return (_("Missing argument %(name)s.", name=hints) if kind == "argument" else
                _("Missing option %(name)s.", name=hints))
    return None


def shown_source(settings: Settings) -> str:
    """Where the settings come from: their file, or the embedded defaults in words."""
    return _("embedded defaults") if settings.source == "embedded defaults" else settings.source


# The labels of labelled(), for the catalogs: "database", "whmcs", "whmcs database", "warning".
LABELS = {"database": N_("database: %(text)s"), "whmcs": N_("whmcs: %(text)s"),
          "whmcs database": N_("whmcs database: %(text)s"), "warning": N_("warning: %(text)s")}


def language_of(message: str) -> str:
    """The language of a line that says ``message`` (a message of another part of vipgate):
    the CLI's when it is a ``Reason``, English when it is an English sentence or quotes an
    English text as its ``problem`` (the system's or a parser's error, a validation message
    not translated yet), so that the line is in one language."""
    if not isinstance(message, Reason):
        return "en"
    quoted = message.values.get("problem")
    english = isinstance(quoted, str) and not isinstance(quoted, Reason)
    return "en" if english else texts().language


def said(message: str) -> str:
    """``message`` in :func:`language_of`'s language."""
    return render_reason(message, language_of(message))


def labelled(label: str, text: str) -> str:
    """``label: text`` in one language, :func:`language_of` ``text``'s."""
    language = language_of(text)
    return Texts(language).gettext(LABELS[label], text=render_reason(text, language))


def exception_text(exc: BaseException) -> str:
    """``exc``'s one-line message (its first argument, a ``Reason`` or a string) as
    :func:`said` says it."""
    message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    return said(message)


def config_failure(exc: ConfigError) -> Failure:
    """A bad configuration in one line (exit 2), as :func:`said` says it."""
    return Failure(said(exc.reason), 2)


class Failure(click.ClickException):
    """A one-line failure with its exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        # click annotates exit_code as a ClassVar, but reads it from the instance (and so
        # does main()): a per-instance code is what its runtime supports.
        self.exit_code = exit_code  # type: ignore[misc]


def settings_of(ctx: click.Context) -> Settings:
    """The settings this invocation names (``--config``); a bad file is a usage failure."""
    try:
        return load_settings(ctx.obj.get("config"))
    except ConfigError as exc:
        raise config_failure(exc) from None


def database_failure(exc: sa.exc.SQLAlchemyError, url: str | None, *,
                     what: str = "database", exit_code: int = 1) -> Failure:
    """One line naming the database (password hidden; ``url`` None when it is not known)
    and the driver's reason."""
    from bridge.checks import database_error

    return Failure(database_error(exc, url, what=what), exit_code)


def opening(settings: Settings, open_: Callable[[Settings], T], *, exit_code: int = 1,
            what: str = "database") -> T:
    """``open_(settings)``, with database problems turned into one-line failures (exit 2 for
    a schema not upgraded, ``exit_code`` for a database that does not answer)."""
    try:
        return open_(settings)
    except DatabaseNotReady as exc:
        raise Failure(exception_text(exc), 2) from None
    except sa.exc.SQLAlchemyError as exc:
        raise database_failure(exc, settings.bridge.database_url, what=what,
                               exit_code=exit_code) from None


def log_to_stderr() -> None:
    """vipgate's info lines (one per change applied to WHMCS, with its reasons) on stderr,
    for the long-running commands; nothing changes when logging is configured already (a
    host such as gunicorn, or tests)."""
    import logging

    if logging.getLogger().handlers:
        return
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("vipgate", "bridge"):
        logging.getLogger(name).setLevel(logging.INFO)


class Progress:
    """A tqdm bar on a terminal; otherwise a line on stderr every 10% of the clients."""

    def __init__(self, total: int, tty: bool, err: IO[str], texts: Texts | None = None,
                 name: str = "resync") -> None:
        self.total, self.err, self.done, self.name = total, err, 0, name
        self.t = texts or Texts("en")
        self.bar: Any = None
        self.started = time.monotonic()
        self.step = max(1, total // 10)
        if tty:
            from tqdm import tqdm

            tqdm.monitor_interval = 0  # no monitor thread: a scan may fork its processes
            self.bar = tqdm(total=total or None, unit="client", file=err, dynamic_ncols=True,
                            desc=name, smoothing=0.1, mininterval=0.2)

    def __call__(self, count: int) -> None:
        before, self.done = self.done, self.done + count
        if self.bar is not None:
            self.bar.update(count)
        elif before // self.step != self.done // self.step:
            rate = self.done / max(time.monotonic() - self.started, 1e-6)
            self.err.write(self.t.gettext("vipgate: %(name)s %(done)s/%(total)s clients read "
                                          "(%(rate)s/s)", name=self.name, done=self.done,
                                          total=self.total, rate=self.t.number(rate)) + "\n")
            self.err.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    @contextmanager
    def running(self) -> Iterator[Progress]:
        """A run over WHMCS's clients (resync, backfill) with this bar: vipgate's database
        or WHMCS's API failing midway is one line (exit 1); the bar is closed either way."""
        from bridge.whmcs import WhmcsError

        try:
            yield self
        except sa.exc.SQLAlchemyError as exc:
            raise database_failure(exc, None) from None
        except WhmcsError as exc:
            raise Failure(f"WHMCS's API: {exc}", 1) from None
        finally:
            self.close()

"""The config file ``vipgate init`` writes: ``config.example.ini`` (shipped in the package, the
one text of every key's comment) with the values init chose put in place of the defaults.

The example's keys are the declared settings (``tests/test_settings.py`` checks it), so the
written file names every key, commented, and loads like any other.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from importlib import resources
from pathlib import Path

from bridge.i18n import why
from bridge.settings import declared
from bridge.store.meta import new_admin_secret_key, new_webhook_secret

Key = tuple[str, str]

# The secrets init makes itself, fresh for each file.
GENERATED: dict[Key, Callable[[], str]] = {
    ("webhook", "secrets"): new_webhook_secret,
    ("admin", "secret_key"): new_admin_secret_key,
}
# The secret keys only the operator can give (a credential, or a URL holding a password):
# init takes them from its options and prompts. Every key declared secret is in one of the
# two (tests/test_deploy.py), so a new secret key cannot be forgotten here.
GIVEN: frozenset[Key] = frozenset({("bridge", "database_url"), ("whmcs", "secret"),
                                   ("whmcs", "accesskey"), ("whmcs", "database_url")})

HEADER = """\
# vipgate configuration, written by `vipgate init` on {when}.
# Fresh secrets in [webhook] secrets and [admin] secret_key, and the WHMCS API credential it
# was given; every other key shows its default. Keep it readable only by the service user
# (mode 0600). Any key can be overridden by an environment variable VIPGATE_<SECTION>_<KEY>,
# e.g. VIPGATE_POLICY_GRACE_DAYS=2. A malformed value stops start-up with the key named."""


class ConfigFileError(Exception):
    """The file cannot be written; the message is one line for the operator."""


def example_text() -> str:
    """config.example.ini as shipped in the package."""
    return (resources.files("bridge") / "config.example.ini").read_text(encoding="utf-8")


def check_value(section: str, key: str, text: str) -> str:
    """``text`` if it is a valid value of ``[section] key`` (ValueError saying what is
    expected otherwise), the way the file would be read."""
    from marshmallow import ValidationError

    if any(c in text for c in "\r\n\x00"):
        raise ValueError(why.gettext("expected one line"))
    try:
        declared(section, key).parser.deserialize(text)
    except ValidationError as exc:
        messages = exc.messages
        raise ValueError(messages[0] if isinstance(messages, list) else str(messages)) \
            from None
    return text.strip()


def config_text(values: Mapping[Key, str], when: datetime) -> str:
    """The example with ``values`` in place of the defaults and init's header in place of the
    example's (its first paragraph)."""
    lines = example_text().splitlines()
    first_blank = lines.index("")
    out = [HEADER.format(when=f"{when:%Y-%m-%d %H:%M %Z}".strip()), *lines[first_blank:]]
    section, placed = "", set()
    for number, line in enumerate(out):
        if line.startswith("["):
            section = line.strip().strip("[]")
        elif line and not line.startswith(("#", ";")) and "=" in line:
            key = line.partition("=")[0].strip()
            if (section, key) in values:
                out[number] = f"{key} = {values[(section, key)]}"
                placed.add((section, key))
    missing = sorted(set(values) - placed)
    if missing:  # a key init sets that the example lacks: the example and settings disagree
        raise ConfigFileError("config.example.ini has no key " +
                              ", ".join(f"[{s}] {k}" for s, k in missing))
    return "\n".join(out) + "\n"


def write_private(path: Path, text: str, *, force: bool, now: datetime) -> Path | None:
    """Write ``text`` to a new file ``path`` with mode 0600. An existing file is refused, or
    with ``force`` renamed to a backup first (returned: ``PATH.bak-YYYYMMDD-HHMMSS``)."""
    if not path.parent.is_dir():
        raise ConfigFileError(why.gettext("folder %(path)s does not exist (create it first, "
                                          "owned by the service user)", path=str(path.parent)))
    backup = None
    if path.exists() or path.is_symlink():
        if not force:
            raise ConfigFileError(why.gettext("%(path)s exists; pass --force to replace it (the "
                                              "old file is kept as a backup)", path=str(path)))
        backup = path.with_name(f"{path.name}.bak-{now:%Y%m%d-%H%M%S}")
        if backup.exists():
            raise ConfigFileError(why.gettext("backup %(path)s exists already; try again in a "
                                              "second", path=str(backup)))
        path.rename(backup)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigFileError(why.gettext("cannot write %(path)s: %(problem)s", path=str(path),
                                          problem=exc.strerror or str(exc))) from None
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)  # whatever the umask
        file.write(text)
    return backup

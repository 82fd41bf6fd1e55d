"""What a user installs: the wheel and the sdist built from this tree, the wheel installed into
a fresh virtualenv outside the tree, and vipgate run from there (no source tree on the path):
the quick start a new user takes (``--version``, ``db upgrade`` on SQLite and MariaDB,
``demo --no-wait``, ``install-stub --addon`` into a WHMCS folder, ``init`` and ``deploy``), and
every command and option README's install section shows.

The build runs on a copy of the tree, so it leaves no ``build/`` or ``*.egg-info`` behind.
Building and installing take PyPI (or pip's cache) for setuptools and vipgate's dependencies.
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import bridge

ROOT = Path(__file__).resolve().parent.parent
# What vipgate reads at run time from its own package, beside the Python modules.
RUNTIME_FILES = (
    "bridge/migrations/env.py",
    "bridge/migrations/script.py.mako",
    "bridge/migrations/versions/0001_inbox_meta_standing.py",
    "bridge/admin/templates/admin/base.html",
    "bridge/admin/static/admin.css",
    "bridge/panels/templates/client_summary.html",
    "bridge/sandbox/php/fire.php",
    "bridge/sandbox/templates/base.html",
    "bridge/sandbox/php/addon.php",
    "whmcs_php_stub/vipgate.php",
    "bridge/config.example.ini",
    "bridge/deploy/templates/vipgate-web.service",
    "bridge/deploy/templates/nginx-site.conf",
    "whmcs_php_stub/hooks_loader.php",
    "whmcs_php_stub/addon/vipgate.php",
    "whmcs_php_stub/addon/hooks.php",
    "whmcs_php_stub/addon/lang/english.php",
    "whmcs_php_stub/addon/lang/portuguese-br.php",
    "bridge/translations/pt_BR/LC_MESSAGES/messages.po",
)
# Compiled by the build (setup.py) into the wheel only: the tree and the sdist keep the .po.
COMPILED_CATALOGS = ("bridge/translations/pt_BR/LC_MESSAGES/messages.mo",
                     "bridge/translations/en/LC_MESSAGES/messages.mo")
IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                 ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis",
                                 "bench", "tests", "docs", "*.db", "*.db-*")


def _clean_env() -> dict[str, str]:
    """The environment without the source tree on the path or vipgate settings."""
    return {k: v for k, v in os.environ.items()
            if k != "PYTHONPATH" and not k.startswith("VIPGATE_")}


@dataclass
class Installed:
    wheel: Path
    sdist: Path
    bin: Path
    home: Path  # a working folder outside the source tree

    def run(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / "vipgate"), *args], cwd=self.home,
                              env={**_clean_env(), **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, check=False)


def _built_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, the sdist and a virtualenv with the wheel, built once per test run: in a
    folder the run's xdist workers share, under an flock, so a worker (or a module fixture
    set up again after other modules' tests ran between this module's) reuses the build."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    base = tmp_path_factory.getbasetemp()
    work = base.parent / f"wheel-{run}" if run else base / "wheel-shared"
    work.mkdir(exist_ok=True)
    with open(work / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (work / "built").exists():
            return work
        for old in ("tree", "dist", "venv"):  # a build that failed half-way
            shutil.rmtree(work / old, ignore_errors=True)
        tree = work / "tree"
        shutil.copytree(ROOT, tree, ignore=IGNORED)
        built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(work / "dist"),
                                str(tree)], cwd=work, env=_clean_env(), capture_output=True,
                               text=True, timeout=600, check=False)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        # setuptools' "Package would be ignored" warnings meant files left out of the wheel.
        assert "would be ignored" not in built.stdout + built.stderr
        wheel = next((work / "dist").glob("vipgate-*.whl"))
        venv.create(work / "venv", with_pip=True)
        pip = subprocess.run([str(work / "venv" / "bin" / "python"), "-m", "pip", "install",
                              "--quiet", str(wheel)], cwd=work, env=_clean_env(),
                             capture_output=True, text=True, timeout=600, check=False)
        assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
        (work / "built").touch()
    return work


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = _built_once(tmp_path_factory)
    wheel = next((work / "dist").glob("vipgate-*.whl"))
    sdist = next((work / "dist").glob("vipgate-*.tar.gz"))
    home = tmp_path_factory.mktemp("wheel-home")
    yield Installed(wheel, sdist, work / "venv" / "bin", home)


def test_the_wheel_and_the_sdist_carry_what_vipgate_reads_at_run_time(installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert [f for f in RUNTIME_FILES if f not in names] == []
    # the packaged example is the top-level one (bridge/config.example.ini links to it)
    assert zipfile.ZipFile(installed.wheel).read("bridge/config.example.ini") == \
        (ROOT / "config.example.ini").read_bytes()
    with tarfile.open(installed.sdist) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        in_sdist = {name.removeprefix(top + "/") for name in sdist.getnames()}
    assert [f for f in RUNTIME_FILES if f not in in_sdist] == []


def test_the_wheel_carries_compiled_catalogs_that_the_installed_package_reads(
        installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert [f for f in COMPILED_CATALOGS if f not in names] == []
    python = installed.bin / "python"
    answer = subprocess.run(
        [str(python), "-c", "from babel.support import Translations; from bridge import i18n; "
         "mo = i18n.CATALOGS / 'pt_BR/LC_MESSAGES/messages.mo'; "
         "print(Translations(mo.open('rb')).ugettext('Overdue invoices'), '|', "
         "i18n.Texts('pt_BR').gettext('Overdue invoices'))"],
        cwd=installed.home, env=_clean_env(), capture_output=True, text=True, timeout=60,
        check=False)
    assert answer.stdout.strip() == "Faturas vencidas | Faturas vencidas", answer.stderr


def test_the_installed_command_prints_the_one_version(installed) -> None:
    answer = installed.run("--version")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == f"vipgate {bridge.__version__}"
    assert installed.wheel.name.startswith(f"vipgate-{bridge.__version__}-")


def _head() -> str:
    versions = sorted((ROOT / "bridge" / "migrations" / "versions").glob("[0-9]*.py"))
    return versions[-1].name[:4]


def test_the_installed_package_creates_its_sqlite_database(installed) -> None:
    answer = installed.run("db", "upgrade")
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert re.search(rf"database at revision {_head()}\b", answer.stdout + answer.stderr)
    assert (installed.home / "vipgate.db").exists()


@pytest.mark.mariadb
def test_the_installed_package_creates_its_mariadb_database(installed, mariadb_url) -> None:
    answer = installed.run("db", "upgrade",
                           env={"VIPGATE_BRIDGE_DATABASE_URL": mariadb_url})
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert re.search(rf"database at revision {_head()}\b", answer.stdout + answer.stderr)


def test_the_installed_demo_runs_the_seed_story(installed) -> None:
    answer = installed.run("demo", "--no-wait")
    assert answer.returncode == 0, answer.stdout[-3000:] + answer.stderr[-3000:]
    assert re.search(r"all \d+ checks passed", answer.stdout)


def test_the_installed_package_writes_a_config_and_the_service_files(installed) -> None:
    answer = installed.run("init", "--config", "init.ini", "--whmcs-url", "https://whmcs.test",
                           "--identifier", "id", "--secret", "s", "--no-check")
    assert answer.returncode == 0, answer.stdout + answer.stderr
    written = (installed.home / "init.ini").read_text()
    assert "[resync]" in written and "url = https://whmcs.test" in written
    units = installed.run("deploy", "systemd", "--venv", str(installed.bin.parent),
                          "--config", str(installed.home / "init.ini"))
    assert units.returncode == 0, units.stderr
    assert f"ExecStart={installed.bin}/vipgate worker" in units.stdout
    site = installed.run("deploy", "nginx", "--server-name", "vipgate.test")
    assert site.returncode == 0 and "client_max_body_size 5m;" in site.stdout, site.stderr


def test_the_installed_package_writes_the_addon_module_into_a_whmcs_folder(installed) -> None:
    whmcs = installed.home / "whmcs"
    (whmcs / "includes").mkdir(parents=True)
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    answer = installed.run("install-stub", "--addon", str(whmcs), "--url", "https://vipgate.test",
                           env={"VIPGATE_WEBHOOK_SECRETS": secret})
    assert answer.returncode == 0, answer.stdout + answer.stderr
    addon = whmcs / "modules" / "addons" / "vipgate"
    sources = {"vipgate_stub.php": "vipgate.php", "hooks.php": "addon/hooks.php",
               "vipgate.php": "addon/vipgate.php", "lang/english.php": "addon/lang/english.php",
               "lang/portuguese-br.php": "addon/lang/portuguese-br.php"}
    assert sorted(str(path.relative_to(addon)) for path in addon.rglob("*.php")) == \
        sorted(sources)
    for name, source in sources.items():  # the package's PHP files, as in the tree
        assert (addon / name).read_text() == (ROOT / "whmcs_php_stub" / source).read_text(), name
    assert not (whmcs / "includes" / "hooks").exists()  # the addon only
    # what to enter in WHMCS's Setup > Addon Modules
    assert "Setup > Addon Modules > vipgate > Activate" in answer.stdout
    assert re.search(r"Bridge URL:\s+https://vipgate\.test\n", answer.stdout), answer.stdout
    assert re.search(rf"Webhook secret:\s+{re.escape(secret)}\n", answer.stdout), answer.stdout


# --- README's install section -----------------------------------------------------------------


def _install_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Installing\n")
    return readme[start:readme.index("\n## ", start + 1)]


def _readme_commands() -> list[list[str]]:
    """The ``vipgate`` command lines in the install section's shell blocks, as words (a line
    continued with a backslash joined, comments and ``&&`` chains split off)."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", _install_section(), re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            for part in re.split(r"&&|;", line.split(" #")[0]):
                words = shlex.split(part)
                if words and words[0] == "vipgate":
                    commands.append(words[1:])
    return commands


@dataclass
class _Help:
    """What ``vipgate ... --help`` says: its subcommands, its options (and whether each takes a
    value) and how many arguments its usage line names."""

    commands: set[str]
    options: dict[str, bool]
    arguments: int

    @classmethod
    def parse(cls, text: str) -> _Help:
        commands, options, section = set(), {}, ""
        for line in text.splitlines():
            if re.match(r"^\S.*:$", line):
                section = line
            elif section == "Commands:" and (found := re.match(r"^  (\S+)", line)):
                commands.add(found.group(1))
            elif section == "Options:" and (found := re.match(
                    r"^\s+(?:-\w, )?(--[a-z][\w-]*)(?: (\S+))?", line)):
                options[found.group(1)] = found.group(2) is not None
        usage = re.search(r"Usage: .*?\[OPTIONS\](.*)", text)
        arguments = len(re.findall(r"[A-Z_]{2,}", usage.group(1))) if usage else 0
        return cls(commands, options, arguments)


def test_every_command_and_option_of_the_readme_install_section_exists(installed) -> None:
    """Each ``vipgate`` line of README's "Installing" names commands the installed wheel has,
    down to one that takes no subcommand, with options and arguments its --help lists."""
    commands = _readme_commands()
    named = {" ".join(words[:2]) for words in commands}
    for expected in ("init --public-url", "install-stub --addon", "deploy systemd",
                     "deploy nginx", "admin create-user", "check"):
        assert any(name.startswith(expected) for name in named), (expected, named)
    section = _install_section()
    assert "vipgate db upgrade" in section  # inline, not in a shell block
    commands.append(["db", "upgrade"])
    # the wheel's name as the section writes it
    assert "vipgate-<version>-py3-none-any.whl" in section
    assert installed.wheel.name == f"vipgate-{bridge.__version__}-py3-none-any.whl"
    helps: dict[tuple[str, ...], _Help] = {}

    def help_of(path: tuple[str, ...]) -> _Help:
        if path not in helps:
            answer = installed.run(*path, "--help")
            assert answer.returncode == 0, (path, answer.stdout + answer.stderr)
            helps[path] = _Help.parse(answer.stdout)
        return helps[path]

    for words in commands:
        path: tuple[str, ...] = ()
        arguments, rest = 0, list(words)
        while rest:
            word = rest.pop(0)
            current = help_of(path)
            if word.startswith("-"):
                option = word.split("=")[0]
                assert option in current.options, (words, option, "not in", path)
                if current.options[option] and "=" not in word:
                    rest.pop(0)  # its value
            elif not arguments and word in current.commands:
                path += (word,)
            else:
                arguments += 1
        leaf = help_of(path)
        assert path and not leaf.commands, (words, "names no command to run")
        assert arguments <= leaf.arguments, (words, "more arguments than", path, "takes")

"""The ``vipgate`` command: the group and its built-in commands in :mod:`bridge.cli.main`
(the console script ``bridge.cli.main:main``), ``vipgate resync`` in :mod:`bridge.cli.resync`,
``vipgate sandbox`` in :mod:`bridge.cli.sandbox` (the sandbox reached through
:mod:`bridge.demo`), what they share in :mod:`bridge.cli.common`."""

"""What-if variant of the bridge, for ``run.py --whatif`` only: NOT a fix, not used by
vipgate. It serves the unchanged ``bridge.create_app()`` with two pool options changed, to
price them under the same harness:

1. no ``pool_pre_ping`` (a COM_PING round trip before every checkout);
2. no pool reset on return (a ROLLBACK round trip after every ``engine.begin()`` that already
   committed).

Both are robustness trade-offs the bridge makes on purpose; read the figures as "what these
cost", not as a recommendation. (Earlier versions also patched in schemas and the INSERT built
once; those are in the bridge itself since commit 5a26e20.)
"""

from __future__ import annotations

import functools

from flask import Flask

import bridge.store
from bridge import create_app as _create_app


def create_app() -> Flask:
    bridge.store.make_engine = functools.partial(
        bridge.store.make_engine, pool_pre_ping=False, pool_reset_on_return=None)
    return _create_app()

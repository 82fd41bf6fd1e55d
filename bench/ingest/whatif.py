"""What-if variant of the bridge, for ``run.py --whatif`` only: NOT a fix, not used by
vipgate. It serves the unchanged ``bridge.web.app.create_app()`` with the inbox written the
way it was before session 5, to measure what the inbox writer buys under the same harness, in
the same run:

- through the store's SQLAlchemy engine (``engine.begin()``), so four round trips per event:
  the pool's pre-ping, the INSERT, a COMMIT, and the pool's reset-on-return ROLLBACK;
- instead of the inbox writer's own pool (``make_inbox_engine``, bridge.store.database): one
  autocommit INSERT per event, a ping only after IDLE_PING_SECONDS of idleness, no reset on return.

Everything else (signature, validation, schemas made once, ...) is the bridge as it is.
(Earlier versions of this file priced the pre-ping and the reset-on-return on the store's
engine, and before that the schemas and the INSERT built once; all of those are settled.)
"""

from __future__ import annotations

from flask import Flask

import bridge.store.database
from bridge.web.app import create_app as _create_app


def create_app() -> Flask:
    # Store() then makes no inbox writer, and enqueue takes its SQLAlchemy path
    bridge.store.database.uses_pymysql = lambda _engine: False
    return _create_app()

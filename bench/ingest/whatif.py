"""What-if variant of the bridge, for ``run.py --whatif`` only: NOT a fix, not used by
vipgate. It serves the unchanged ``bridge.create_app()`` with four hot-path changes patched in,
to measure under the same harness how much of the ingest cost they account for:

1. marshmallow schemas instantiated once, not per request (``bridge.payloads.load_event``
   builds ``Envelope()`` and the vars schema for every event, and a Schema instance deep-copies
   its declared fields);
2. the inbox INSERT built once and executed with a parameter dict, instead of
   ``inbox.insert().values(**row)`` built per event;
3. no ``pool_pre_ping`` (a COM_PING round trip before every checkout);
4. no pool reset on return (a ROLLBACK round trip after every ``engine.begin()`` that already
   committed).

The behaviour seen by a client is unchanged (same validation, same rows, same answers); what
changes is robustness trade-offs (3 and 4) that the bridge made on purpose, so read the figures
as "what these costs are", not as a recommendation to drop them as they are.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import sqlalchemy as sa
from flask import Flask
from marshmallow import ValidationError

import bridge.store
import bridge.webhook
from bridge import create_app as _create_app
from bridge.payloads import VARS_SCHEMAS, Envelope, flatten_errors
from bridge.store import InboxEvent, Store, inbox, utc_naive

_ENVELOPE = Envelope()
_VARS = {hook: schema() for hook, schema in VARS_SCHEMAS.items()}
_INSERT = inbox.insert()
_make_engine = bridge.store.make_engine


def load_event(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ValidationError({"_schema": ["Body must be a JSON object."]})
    try:
        envelope = _ENVELOPE.load(document)
    except ValidationError as exc:
        raise ValidationError(flatten_errors(exc.messages)) from None
    try:
        variables = _VARS[envelope["hook"]].load(envelope["vars"])
    except ValidationError as exc:
        raise ValidationError(flatten_errors(exc.messages, "vars")) from None
    return {"hook": envelope["hook"], "vars": variables, "occurred_at": envelope["occurred_at"]}


def enqueue(self: Store, event: InboxEvent) -> Literal["queued", "duplicate"]:
    row = {
        "webhook_id": event.webhook_id,
        "hook": event.hook,
        "client_id": event.client_id,
        "payload": json.dumps(event.vars, separators=(",", ":"), sort_keys=True),
        "occurred_at": utc_naive(event.occurred_at),
        "received_at": utc_naive(event.received_at),
        "state": "queued",
        "attempts": 0,
        "next_attempt_at": utc_naive(event.received_at),
    }
    try:
        with self.engine.begin() as conn:
            conn.execute(_INSERT, row)
    except sa.exc.IntegrityError:
        if self.get_event(event.webhook_id) is None:
            raise
        return "duplicate"
    return "queued"


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        return _make_engine(url)
    return sa.create_engine(
        url, pool_pre_ping=False, pool_reset_on_return=None, pool_recycle=3600, pool_size=3,
        max_overflow=2, pool_timeout=10,
        connect_args={"connect_timeout": 5, "read_timeout": 30, "write_timeout": 30,
                      "charset": "utf8mb4"})


def create_app() -> Flask:
    bridge.webhook.load_event = load_event
    Store.enqueue = enqueue  # type: ignore[method-assign]
    bridge.store.make_engine = make_engine
    return _create_app()

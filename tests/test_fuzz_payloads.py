"""hypothesis fuzzing of the payload schemas (bridge.payloads) and of the ingest path.

Random documents, from plain random JSON to envelopes that are almost right (the stub's keys with
WHMCS-quirky values: digit strings, "", "on", floats, bools, nulls, huge numbers, extra keys,
missing keys, odd times at the edges of the calendar):

- ``load_event`` raises nothing but ``ValidationError`` (with the flat ``{path: [message]}`` the
  webhook answers with), or returns a well-typed event;
- a valid event goes through ``store.enqueue`` / ``get_event`` unchanged (SQLite and MariaDB);
- the spec agrees: a document valid under docs/openapi.yaml's ``Envelope`` is accepted;
- through the Flask app, signed random bodies are never answered 5xx, and a 4xx stores nothing.

Bounded and reproducible: fixed example counts, ``derandomize=True``, no example database;
``FUZZ_SCALE=10`` multiplies the counts for a longer local run.
"""

from __future__ import annotations

import json
import os
import string
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema_rs  # comes with schemathesis
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError, validate

from bridge.payloads import MAX_ID, VARS_SCHEMAS, load_event, whitelist
from bridge.store import Store
from bridge.store.database import utc_naive
from bridge.store.inbox import InboxEvent
from hooks.registry import HOOK_SPEC
from tests.helpers import FIXED_NOW, post_signed

SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
FUZZ = settings(derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
HOOKS = sorted(HOOK_SPEC)
KEYS = whitelist()
SPEC = yaml.safe_load((Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml")
                      .read_text(encoding="utf-8"))
ENVELOPE = jsonschema_rs.Draft202012Validator(
    {"$ref": "#/components/schemas/Envelope", "components": SPEC["components"]})

# --- strategies --------------------------------------------------------------------------------

json_scalars = (st.none() | st.booleans() | st.integers()
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
random_json = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)

edge_ints = st.sampled_from([0, 1, -1, MAX_ID, MAX_ID + 1, 2**31, 2**32 - 1, 2**32, 2**63,
                             10**30, -(2**31)])
whmcs_ids = st.one_of(
    st.integers(0, MAX_ID), edge_ints, st.integers(),
    st.integers(0, MAX_ID).map(str),  # WHMCS's digit strings
    edge_ints.map(str),
    st.integers(0, 99).map(lambda n: f" {n} "),
    st.integers(0, 10**6).map(float),  # 5.0: the JSON integer 5
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "0", "00", "-1", "+1", "1_000", "1e3", "0x10", "٣", "²", "１２",
                     "9" * 30, "12abc", " ", "\t7\n"]),
)
quirky = st.one_of(
    whmcs_ids, st.booleans(), st.none(),
    st.sampled_from(["", "on", "off", "ON", " true ", "yes", "system", "Low", "Medium", "High",
                     "Urgent", "Active", "Closed", "Gone", "portuguese-br", "<script>"]),
    st.text(max_size=300), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["groupid", "status", "password"]),
                    st.one_of(whmcs_ids, st.sampled_from(["Active", "Inactive", "Gone"])),
                    max_size=3),
)

zones = st.one_of(st.just(UTC), st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))))
# datetimes near the ends of the calendar too: an offset there moves UTC past year 1 or 9999
recent = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=zones)
edge_moments = st.one_of(
    st.datetimes(timezones=zones),
    st.datetimes(max_value=datetime(1, 1, 2)).flatmap(
        lambda d: zones.map(lambda z: d.replace(tzinfo=z))),
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(1000, 1, 2)).flatmap(
        lambda d: zones.map(lambda z: d.replace(tzinfo=z))),
    st.datetimes(min_value=datetime(9999, 12, 30)).flatmap(
        lambda d: zones.map(lambda z: d.replace(tzinfo=z))),
)
moments = st.integers(1, 4).flatmap(lambda n: edge_moments if n == 4 else recent)


def iso(moment: datetime) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


occurred_ats = st.one_of(
    moments.map(iso),
    st.datetimes().map(lambda d: d.isoformat()),  # no zone: refused
    st.sampled_from(["", "now", "2026-11-21", "2026-11-21T11:59:00+00:00",
                     "2026-11-21t11:59:00z", "2026-11-21T23:59:60Z", "0000-01-01T00:00:00Z",
                     "2026-13-01T00:00:00Z", "2026-11-21T11:59:00+24:00"]),
    json_scalars,
)


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True about once in ``n`` draws (and False for the shrinker's simplest choice)."""
    return draw(st.integers(1, n)) == n


def good_value(field: Any) -> st.SearchStrategy[Any]:
    """Values a field must accept, in the spellings WHMCS and PHP use."""
    kind = type(field).__name__
    if kind == "WhmcsId":
        return st.one_of(st.integers(0, MAX_ID), st.integers(0, MAX_ID).map(str),
                         st.integers(0, 10**6).map(float), st.sampled_from([0, "0", "00"]))
    if kind == "WhmcsBool":
        return st.sampled_from([True, False, 1, 0, "1", "0", "on", "off", "", "true", "false",
                                "ON", " True "])
    if kind == "SystemOrAdmin":
        return st.sampled_from(["system", "", "3"]) | st.integers(0, MAX_ID)
    if kind == "Nested":
        return fixed_dictionaries_for(field.schema)
    if kind == "Integer":
        return st.integers(0, MAX_ID)
    if kind == "List":
        return st.lists(good_value(field.inner), max_size=3)
    choices = [v for v in field.validators if isinstance(v, validate.OneOf)]
    if choices:
        return st.sampled_from(list(choices[0].choices))
    lengths = [v.max for v in field.validators if isinstance(v, validate.Length)]
    return st.text(max_size=lengths[0] if lengths else 50)


def fixed_dictionaries_for(schema: Any) -> st.SearchStrategy[dict[str, Any]]:
    fields = schema.fields
    return st.fixed_dictionaries(
        {name: good_value(f) for name, f in fields.items() if f.required},
        optional={name: good_value(f) for name, f in fields.items() if not f.required})


@st.composite
def vars_for(draw: st.DrawFn, hook: str) -> dict[str, Any]:
    """Mostly vars the hook's schema takes; else the stub's keys with quirky values."""
    if not one_in(draw, 3):
        out = draw(fixed_dictionaries_for(VARS_SCHEMAS[hook]()))
    else:
        keys = KEYS[hook]
        chosen = draw(st.lists(st.sampled_from(keys), unique=True)) if keys else []
        out = {key: draw(quirky) for key in chosen}
    if one_in(draw, 10):  # an extra, not whitelisted key
        out[draw(st.text(string.ascii_lowercase, min_size=1, max_size=10))] = draw(quirky)
    if out and one_in(draw, 10):  # one value replaced by a quirky one
        out[draw(st.sampled_from(sorted(out)))] = draw(quirky)
    return out


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    hook = draw(st.sampled_from(HOOKS)) if not one_in(draw, 10) else draw(
        st.sampled_from(["", "invoicepaid", "ServerReboot"]) | st.text(max_size=10))
    document: dict[str, Any] = {
        "hook": hook,
        "vars": draw(vars_for(hook)) if hook in KEYS else draw(random_json),
        "occurred_at": draw(occurred_ats if one_in(draw, 4) else moments.map(iso)),
    }
    drop = draw(st.sets(st.sampled_from(sorted(document)), max_size=1)
                if one_in(draw, 10) else st.just(set()))
    for key in drop:
        del document[key]
    if one_in(draw, 20):
        document[draw(st.text(max_size=6))] = draw(json_scalars)
    if one_in(draw, 10) and "vars" in document:
        document["vars"] = draw(random_json)  # vars of the wrong shape: "", [], 5, null...
    return document


documents = st.one_of(envelopes(), envelopes(), envelopes(), random_json)


def _typed(event: dict[str, Any]) -> None:
    """What a valid event must look like, whatever came in."""
    assert set(event) == {"hook", "vars", "occurred_at", "ignored"}
    assert event["hook"] in HOOK_SPEC
    assert set(event["vars"]) <= set(KEYS[event["hook"]])
    assert all(isinstance(key, str) for key in event["ignored"])
    schema = VARS_SCHEMAS[event["hook"]]()
    for key, value in event["vars"].items():
        field = schema.fields[key]
        kind = type(field).__name__
        if kind == "WhmcsId":
            assert type(value) is int and 0 <= value <= MAX_ID, (key, value)
        elif kind == "WhmcsBool":
            assert type(value) is bool, (key, value)
        elif kind == "Nested":
            assert isinstance(value, dict), (key, value)
        elif kind == "Integer":
            assert type(value) is int and 0 <= value <= MAX_ID, (key, value)
        elif kind == "WholeNumber":  # the heartbeat's counts: 5 or 5.0 in, an int out
            assert type(value) is int, (key, value)
        elif kind == "List":
            assert isinstance(value, list) and all(isinstance(v, dict) for v in value)
        else:
            assert isinstance(value, str), (key, value)
    moment = event["occurred_at"]
    assert isinstance(moment, datetime) and moment.tzinfo is not None
    utc_naive(moment)  # storable: converts to UTC without leaving the calendar
    json.dumps(event["vars"], sort_keys=True)  # storable as the inbox's JSON payload


def _flat_errors(exc: ValidationError) -> None:
    """The webhook answers with the first path and its first message: both must exist."""
    messages = exc.messages
    assert isinstance(messages, dict) and messages, messages
    for path, problems in messages.items():
        assert isinstance(path, str)
        assert isinstance(problems, list) and problems and all(isinstance(p, str)
                                                               for p in problems)


# --- load_event --------------------------------------------------------------------------------

REGRESSIONS = [
    # year 1 at +01:00 is year 0 in UTC: OverflowError (a 500) when the inbox stored it
    {"hook": "InvoicePaid", "vars": {"invoiceid": 1}, "occurred_at": "0001-01-01T00:00:00+01:00"},
    {"hook": "PreCronJob", "vars": {}, "occurred_at": "9999-12-31T23:59:59-01:00"},
    # 5.0 is the JSON integer 5 (JSON Schema says so too): it was refused
    {"hook": "InvoicePaid", "vars": {"invoiceid": 5.0}, "occurred_at": "2026-11-21T11:59:00Z"},
    # above 2**31 - 1 the ids overflowed MariaDB's INT columns: a 500
    {"hook": "AfterModuleSuspend", "vars": {"serviceid": 5, "userid": 4294000000},
     "occurred_at": "2026-11-21T11:59:00Z"},
]


def _example_all(test: Any) -> Any:
    for document in REGRESSIONS:
        test = example(document=document)(test)
    return test


@settings(FUZZ, max_examples=600 * SCALE)
@_example_all
@given(document=documents)
def test_load_event_gives_a_valid_event_or_a_validation_error(document: Any) -> None:
    try:
        event = load_event(document)
    except ValidationError as exc:
        _flat_errors(exc)
        return
    _typed(event)


def documented_leniency_removed(document: dict[str, Any]) -> dict[str, Any] | None:
    """``document`` without what the bridge accepts beyond the spec, as the spec says: ids
    with surrounding whitespace, checkbox strings in any case with whitespace, and the years
    1000 and 9999 (None: a document of those years, which the spec's pattern leaves out)."""
    if str(document["occurred_at"])[:4] in ("1000", "9999"):
        return None

    def normal(schema: Any, values: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in values.items():
            kind = type(schema.fields[key]).__name__
            if kind == "WhmcsId" and isinstance(value, str):
                value = value.strip()
            elif kind == "WhmcsBool" and isinstance(value, str):
                value = value.strip().lower()
            elif kind == "Nested":
                value = normal(schema.fields[key].schema, value)
            out[key] = value
        return out

    return {**document, "vars": normal(VARS_SCHEMAS[document["hook"]](), document["vars"])}


@settings(FUZZ, max_examples=300 * SCALE)
@given(document=documents)
def test_the_spec_and_the_schemas_accept_the_same_documents(document: Any) -> None:
    """docs/openapi.yaml's Envelope as the oracle: valid there ⇒ accepted here; accepted here ⇒
    valid there, once the leniencies the spec documents are taken out."""
    if ENVELOPE.is_valid(document):
        _typed(load_event(document))
        return
    try:
        load_event(document)
    except ValidationError:
        return
    strict = documented_leniency_removed(document)
    assert strict is None or ENVELOPE.is_valid(strict), [
        e.message for e in ENVELOPE.iter_errors(strict)][:3]


# --- valid events through the store ----------------------------------------------------------


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """Envelopes that load: drawn like the others, kept when load_event takes them."""
    document = draw(envelopes())
    try:
        return load_event(document)
    except ValidationError:
        hook = draw(st.sampled_from(HOOKS))
        required = {name: field for name, field in VARS_SCHEMAS[hook]().fields.items()
                    if field.required}
        minimal = {"hook": hook, "vars": {name: draw(good_value(field))
                                          for name, field in required.items()},
                   "occurred_at": draw(recent).isoformat()}
        return load_event(minimal)


_stored = iter(range(10**9))


@settings(FUZZ, max_examples=150 * SCALE)
@given(event=valid_events())
def test_valid_events_round_trip_through_the_store(store: Store, event: dict[str, Any]) -> None:
    msg_id = f"fuzz_store_{next(_stored)}"
    client_id = event["vars"].get("userid") or None
    stored = InboxEvent(msg_id, event["hook"], client_id, event["vars"], event["occurred_at"],
                        FIXED_NOW)
    assert store.enqueue(stored) == "queued"
    before = store.inbox_fingerprint()
    assert store.enqueue(stored) == "duplicate"
    assert store.inbox_fingerprint() == before
    row = store.get_event(msg_id)
    assert row is not None
    assert (row.hook, row.client_id, row.vars, row.state) == (
        event["hook"], client_id, event["vars"], "queued")
    expected = utc_naive(event["occurred_at"])
    if store.engine.dialect.name != "sqlite":  # MariaDB's DATETIME keeps whole seconds
        expected = expected.replace(microsecond=0)
    assert row.occurred_at == expected


# --- the whole ingest path, signed ---------------------------------------------------------------

_posted = iter(range(10**9))


@pytest.fixture
def tally() -> Iterator[Counter[int]]:
    counts: Counter[int] = Counter()
    yield counts
    print("\nanswers by status:", dict(sorted(counts.items())))

bodies = st.one_of(
    documents.map(lambda d: json.dumps(d).encode()),
    documents.map(lambda d: json.dumps(d, ensure_ascii=False).encode()),
    st.binary(max_size=200),
    st.sampled_from([b"", b"null", b"[]", b"{}", b'"x"', b"1e999", b"-0", b"{\"hook\":",
                     b"\xef\xbb\xbf{}", b'{"hook":"PreCronJob","vars":{},"vars":[]}']),
)


@settings(FUZZ, max_examples=300 * SCALE)
@example(body=json.dumps(REGRESSIONS[0]).encode())
@example(body=json.dumps(REGRESSIONS[3]).encode())
@given(body=bodies)
def test_signed_random_bodies_never_fail_and_rejections_store_nothing(
        client: Any, store: Store, body: bytes, tally: Counter[int]) -> None:
    msg_id = f"fuzz_post_{next(_posted)}"
    before = store.inbox_fingerprint()
    response = post_signed(client, body, msg_id=msg_id)
    tally[response.status_code] += 1
    assert response.status_code in (200, 202, 400), (response.status_code, response.json)
    assert response.is_json
    if response.status_code == 400:
        assert response.json["error"] in ("invalid_json", "invalid_payload", "unknown_hook")
        assert store.inbox_fingerprint() == before
        return
    event = load_event(json.loads(body))
    if response.status_code == 200:
        assert HOOK_SPEC[event["hook"]].sync
        assert store.inbox_fingerprint() == before
        return
    assert response.json == {"id": msg_id, "status": "queued"}
    row = store.get_event(msg_id)
    assert row is not None and row.hook == event["hook"] and row.vars == event["vars"]

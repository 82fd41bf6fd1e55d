"""docs/openapi.yaml matches the code: hooks, each hook's vars, error codes, routes.

The spec is what integrators read and what tests/test_fuzz_schemathesis.py fuzzes the app
against; these tests fail when the code moves without it (or the other way round).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs  # comes with schemathesis
import pytest
import yaml
from flask import Flask

import bridge.signing
import bridge.web.webhook
from bridge.payloads import VARS_SCHEMAS, whitelist
from bridge.settings import default_settings
from bridge.store.inbox import INBOX_STATES
from bridge.web.app import create_app
from hooks.registry import HOOK_SPEC
from tests.helpers import SECRET, Clock

ROOT = Path(__file__).resolve().parents[1]
SPEC: dict[str, Any] = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text("utf-8"))
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]
HOOK_OPERATION = SPEC["paths"]["/hooks/whmcs"]["post"]
BATCH_OPERATION = SPEC["paths"]["/hooks/whmcs/batch"]["post"]
DOCUMENTED_PREFIXES = ("/hooks", "/healthz")


def _ref(node: dict[str, Any]) -> dict[str, Any]:
    """The schema a ``{"$ref": "#/components/schemas/X"}`` points to."""
    return SCHEMAS[node["$ref"].rsplit("/", 1)[1]]


def _validator(name: str) -> Any:
    return jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]})


def _event_schemas() -> dict[str, dict[str, Any]]:
    """Per hook named in the envelope's oneOf, its event schema."""
    found = {}
    for branch in SCHEMAS["Envelope"]["oneOf"]:
        event = _ref(branch)
        found[event["properties"]["hook"]["const"]] = event
    return found


# --- hooks and their vars ------------------------------------------------------------------


def test_spec_is_openapi_3_1() -> None:
    assert SPEC["openapi"].startswith("3.1.")


def test_hook_enum_is_the_hook_spec() -> None:
    assert SCHEMAS["HookName"]["enum"] == list(HOOK_SPEC)


def test_envelope_has_one_schema_per_hook_told_apart_by_hook() -> None:
    envelope = SCHEMAS["Envelope"]
    assert list(_event_schemas()) == list(HOOK_SPEC)
    assert envelope["discriminator"]["propertyName"] == "hook"
    mapping = envelope["discriminator"]["mapping"]
    assert list(mapping) == list(HOOK_SPEC)
    for hook, ref in mapping.items():
        assert _ref({"$ref": ref})["properties"]["hook"] == {"const": hook}


@pytest.mark.parametrize("hook", list(HOOK_SPEC))
def test_each_hooks_vars_are_the_whitelist(hook: str) -> None:
    event = _event_schemas()[hook]
    assert sorted(event["required"]) == ["hook", "occurred_at", "vars"]
    assert event["additionalProperties"] is False
    variables = _ref(event["properties"]["vars"])
    assert sorted(variables.get("properties", {})) == whitelist()[hook]
    # unknown keys are left out (and counted) by the code: a newer stub must not lose events
    assert variables["additionalProperties"] is True
    required = sorted(name for name, field in VARS_SCHEMAS[hook]().fields.items()
                      if field.required)
    assert sorted(variables.get("required", [])) == required


def test_nested_olddata_matches_its_schema() -> None:
    nested = VARS_SCHEMAS["ClientEdit"]().fields["olddata"].schema
    documented = _ref(_ref({"$ref": "#/components/schemas/ClientEditVars"})
                      ["properties"]["olddata"])
    assert sorted(documented["properties"]) == sorted(nested.fields)
    assert documented["additionalProperties"] is True


def test_heartbeat_rejected_events_match_their_schema() -> None:
    nested = VARS_SCHEMAS["AfterCronJob"]().fields["rejected_recent"].inner.schema
    documented = SCHEMAS["RejectedEvent"]
    assert sorted(documented["properties"]) == sorted(nested.fields)
    assert sorted(documented["required"]) == sorted(
        name for name, field in nested.fields.items() if field.required)


def test_the_stub_version_header_is_documented() -> None:
    [header] = [p for p in HOOK_OPERATION["parameters"] if p["in"] == "header"]
    assert header["name"] == bridge.web.webhook.STUB_VERSION_HEADER
    assert header["required"] is False


def test_sync_hooks_are_the_ones_documented_as_answered_at_once() -> None:
    for hook, event in _event_schemas().items():
        assert ("answered at once" in event["description"]) == HOOK_SPEC[hook].sync, hook


def test_the_request_example_and_the_stubs_samples_validate() -> None:
    from tests.test_webhook import SAMPLE_VARS

    envelope = _validator("Envelope")
    example = HOOK_OPERATION["requestBody"]["content"]["application/json"]["example"]
    assert envelope.is_valid(example)
    for hook, variables in SAMPLE_VARS.items():
        document = {"hook": hook, "vars": variables, "occurred_at": "2026-11-21T11:59:00-03:00"}
        assert envelope.is_valid(document), (hook, list(envelope.iter_errors(document)))


# --- error codes ----------------------------------------------------------------------------


def _outcomes(value: ast.expr) -> set[str]:
    """The strings an expression made of literals and ``a if test else b`` can give."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return {value.value}
    if isinstance(value, ast.IfExp):
        return _outcomes(value.body) | _outcomes(value.orelse)
    raise AssertionError(f"cannot resolve {ast.unparse(value)}: teach this test")


def _strings_assigned(function: ast.AST, name: str) -> set[str]:
    """The strings assigned to ``name`` anywhere in ``function``."""
    found: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            found |= _outcomes(node.value)
    return found


def _signature_codes() -> set[str]:
    tree = ast.parse(Path(bridge.signing.__file__).read_text("utf-8"))
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "SignatureError"
            and isinstance(node.args[0], ast.Constant)}


# bridge/web/webhook.py's functions that only the batch endpoint runs: what the batch refuses
# whole, and what it answers per event (a ``rejected`` result); the single endpoint's errors
# are those of every other function. Both endpoints read the body the same way.
BATCH_WHOLE = {"receive_batch", "_batch_events"}
BATCH_PER_EVENT = {"_batch_event", "_validate"}
SHARED_READ = {"_read_verified_json", "_database_away"}


def _webhook_functions() -> set[str]:
    tree = ast.parse(Path(bridge.web.webhook.__file__).read_text("utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def errors_raised_by_webhook(
        functions: set[str] | None = None) -> set[tuple[int, str]]:
    """(status, code) of every ``Rejected(...)`` in bridge/web/webhook.py (codes held in a variable
    or taken from a SignatureError resolved to their literals); by default in the functions the
    single endpoint runs (every one but the batch's own), else in ``functions``."""
    if functions is None:
        functions = _webhook_functions() - BATCH_WHOLE - {"_batch_event"}
    tree = ast.parse(Path(bridge.web.webhook.__file__).read_text("utf-8"))
    found: set[tuple[int, str]] = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef) or function.name not in functions:
            continue
        for node in ast.walk(function):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Rejected"):
                continue
            status, code = node.args[0], node.args[1]
            assert isinstance(status, ast.Constant), ast.unparse(node)
            if isinstance(code, ast.Constant):
                codes = {code.value}
            elif isinstance(code, ast.Name):
                codes = _strings_assigned(function, code.id)
            elif isinstance(code, ast.Attribute) and code.attr == "code":
                codes = _signature_codes()
            else:  # pragma: no cover - a new way of naming a code: teach this test
                raise AssertionError(f"cannot resolve the code in {ast.unparse(node)}")
            assert codes, ast.unparse(node)
            found |= {(status.value, c) for c in codes}
    return found


def documented_errors(operation: dict[str, Any] = HOOK_OPERATION) -> dict[int, set[str]]:
    documented: dict[int, set[str]] = {}
    for status, response in operation["responses"].items():
        if not status.startswith(("4", "5")):
            continue
        schema = _ref(response["content"]["application/json"]["schema"])
        error = schema["properties"]["error"]
        documented[int(status)] = set(error.get("enum", [error.get("const")]))
        assert sorted(schema["required"]) == ["error", "fields", "message"]
    return documented


def test_every_error_the_webhook_raises_is_documented() -> None:
    raised = errors_raised_by_webhook()
    assert {code for _status, code in raised} >= {
        "payload_too_large", "unsupported_media_type", "missing_signature",
        "invalid_signature", "stale_timestamp", "invalid_json", "invalid_payload",
        "unknown_hook"}  # the resolver found them all
    documented = documented_errors()
    missing = {(s, c) for s, c in raised if c not in documented.get(s, set())}
    assert not missing, f"raised by bridge/web/webhook.py, not in docs/openapi.yaml: {missing}"


def test_every_documented_error_is_raised() -> None:
    raised = errors_raised_by_webhook()
    # werkzeug's own 400 (a body it cannot read), answered as JSON by bridge/web/errors.py
    raised |= {(400, "bad_request"), (413, "payload_too_large")}
    for status, codes in documented_errors().items():
        for code in codes:
            assert (status, code) in raised, f"{status} {code} documented, never raised"


def test_error_statuses_documented_are_the_ones_raised() -> None:
    assert set(documented_errors()) == {status for status, _code in errors_raised_by_webhook()}


def test_the_batch_functions_named_here_exist() -> None:
    assert _webhook_functions() >= BATCH_WHOLE | BATCH_PER_EVENT | SHARED_READ


def test_batch_errors_raised_are_the_documented_ones() -> None:
    """The batch refused whole: exactly its documented 4xx/5xx (werkzeug's own 400 and 413
    as for the single endpoint)."""
    raised = errors_raised_by_webhook(BATCH_WHOLE | SHARED_READ)
    assert (400, "invalid_batch") in raised and (503, "database_unavailable") in raised
    raised |= {(400, "bad_request"), (413, "payload_too_large")}
    documented = {(status, code) for status, codes in documented_errors(BATCH_OPERATION).items()
                  for code in codes}
    assert raised == documented


def test_batch_per_event_errors_are_the_documented_ones() -> None:
    raised = errors_raised_by_webhook(BATCH_PER_EVENT)
    assert {status for status, _code in raised} == {400}
    documented = SCHEMAS["BatchEventError"]["properties"]["code"]["enum"]
    assert {code for _status, code in raised} == set(documented)
    assert {"invalid_payload", "unknown_hook", "synchronous_hook"} <= set(documented)


# --- responses ------------------------------------------------------------------------------


def test_health_inbox_counts_are_the_inbox_states() -> None:
    inbox = SCHEMAS["Health"]["properties"]["inbox"]
    assert sorted(inbox["properties"]) == sorted(INBOX_STATES)
    assert sorted(inbox["required"]) == sorted(INBOX_STATES)


def test_accepted_statuses_are_the_stores() -> None:
    import typing

    from bridge.store import Store

    outcome = typing.get_type_hints(Store.enqueue)["return"]
    assert set(SCHEMAS["Accepted"]["properties"]["status"]["enum"]) == set(
        typing.get_args(outcome))


def test_batch_statuses_are_the_stores_and_rejected() -> None:
    import typing

    from bridge.store import Store

    outcome = typing.get_type_hints(Store.enqueue_many)["return"]
    [item] = typing.get_args(outcome)
    statuses = SCHEMAS["BatchResult"]["properties"]["status"]["enum"]
    assert set(statuses) == {*typing.get_args(item), "rejected"}
    assert sorted(SCHEMAS["BatchAnswer"]["required"]) == sorted(["results", *statuses])


def test_batch_limits_are_the_codes() -> None:
    events = SCHEMAS["Batch"]["properties"]["events"]
    assert (events["minItems"], events["maxItems"]) == (1, bridge.web.webhook.BATCH_MAX_EVENTS)
    default = default_settings().webhook.max_batch_bytes
    assert str(default) in BATCH_OPERATION["responses"]["413"]["description"]
    assert SCHEMAS["BatchEvent"]["properties"]["id"]["pattern"] == \
        SPEC["components"]["headers"]["WebhookId"]["schema"]["pattern"]


def test_the_batch_example_validates() -> None:
    example = BATCH_OPERATION["requestBody"]["content"]["application/json"]["example"]
    assert _validator("Batch").is_valid(example)
    envelope = _validator("Envelope")
    for event in example["events"]:
        assert envelope.is_valid({k: v for k, v in event.items() if k != "id"}), event


def test_synchronous_answers_are_signed_as_documented() -> None:
    headers = HOOK_OPERATION["responses"]["200"]["headers"]
    assert sorted(headers) == ["webhook-id", "webhook-signature", "webhook-timestamp"]
    schemes = SPEC["components"]["securitySchemes"]
    assert sorted(s["name"] for s in schemes.values()) == sorted(headers)
    assert HOOK_OPERATION["security"] == [{name: [] for name in schemes}]
    assert BATCH_OPERATION["security"] == HOOK_OPERATION["security"]
    assert SPEC["paths"]["/healthz"]["get"]["security"] == []


def test_signature_header_patterns_are_the_verifiers() -> None:
    """The documented header patterns accept exactly what bridge.signing accepts."""
    headers = SPEC["components"]["headers"]
    documented_id = re.compile(headers["WebhookId"]["schema"]["pattern"])
    documented_stamp = re.compile(headers["WebhookTimestamp"]["schema"]["pattern"])
    samples = [chr(n) for n in range(32, 127)] + ["", "a" * 255, "a" * 256, "msg_1:2-3",
                                                 "1" * 12, "1" * 13, "١٢", "é"]
    for text in samples:
        assert bool(documented_id.search(text)) == bool(bridge.signing._ID.match(text)), text
        assert bool(documented_stamp.search(text)) == bool(
            bridge.signing._TIMESTAMP.match(text)), text


# --- routes ---------------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    settings = default_settings().replace(
        bridge={"database_url": f"sqlite:///{tmp_path}/vipgate.db"}, webhook={"secrets": SECRET})
    return create_app(settings, clock=Clock())


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


def test_routes_under_hooks_and_healthz_are_exactly_the_documented_ones(app: Flask) -> None:
    served = {(_openapi_path(rule.rule), method.lower())
              for rule in app.url_map.iter_rules()
              if rule.rule.startswith(DOCUMENTED_PREFIXES)
              for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    documented = {(path, method) for path, item in SPEC["paths"].items()
                  for method in item if method in ("get", "post", "put", "patch", "delete")}
    assert served == documented
    assert all(path.startswith(DOCUMENTED_PREFIXES) for path, _method in documented)


def _post_batch(client: Any, events: list[Any]) -> Any:
    from bridge.signing import signed_headers
    from tests.helpers import FIXED_NOW

    body = json.dumps({"events": events}).encode()
    headers = signed_headers([SECRET], "batch_1", int(FIXED_NOW.timestamp()), body)
    return client.post("/hooks/whmcs/batch", data=body, headers=headers,
                       content_type="application/json")


def test_an_answer_of_the_app_validates(app: Flask) -> None:
    """One real answer per documented status family, checked against its schema."""
    from tests.helpers import envelope, post_signed

    client = app.test_client()
    checks = [
        (post_signed(client, envelope("InvoicePaid", {"invoiceid": "7"})), "202", "Accepted"),
        (post_signed(client, envelope("TicketOpenValidation", {"departmentId": "1"})), "200",
         None),
        (post_signed(client, envelope("ClientAreaPageSubmitTicket", {"userid": "0"})), "200",
         None),
        (post_signed(client, envelope("InvoicePaid", {})), "400", "BadRequestError"),
        (client.post("/hooks/whmcs", data=b"{}", content_type="application/json"), "401",
         "SignatureError"),
        (client.get("/healthz"), "200", "Health"),
        (_post_batch(client, [{"id": "b1", **json.loads(envelope("InvoicePaid", {
            "invoiceid": "7"}))}, {"id": "b2", **json.loads(envelope("InvoicePaid", {}))}]),
         "200", "BatchAnswer"),
        (_post_batch(client, []), "400", "BadBatchError"),
    ]
    for response, status, name in checks:
        assert str(response.status_code) == status, response.get_data(as_text=True)
        body = json.loads(response.get_data())
        if name is None:
            schema = {"components": SPEC["components"], **HOOK_OPERATION["responses"]["200"]
                      ["content"]["application/json"]["schema"]}
            assert jsonschema_rs.Draft202012Validator(schema).is_valid(body), body
        else:
            assert _validator(name).is_valid(body), (name, body)

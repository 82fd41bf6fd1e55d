"""marshmallow schemas for what the PHP stub forwards: the envelope and each hook's ``vars``.

The stub whitelists these exact keys (see ``whmcs_php_stub/vipgate.php``; a test keeps the two
lists equal). A ``vars`` key the bridge does not know is left out, not refused: a stub newer
than the bridge may send keys this bridge has never heard of, and refusing them would lose the
event (``load_event`` names them; the webhook counts and logs them). WHMCS sends numbers as
strings ("12"), booleans as "on"/""/1/true; both are coerced here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from bridge.model import TICKET_PRIORITIES
from hooks.registry import HOOK_SPEC

MAX_ID = 2**31 - 1  # WHMCS ids are signed int(10), and so are vipgate's id columns
# TicketOpenValidation's priority is the client area's raw form field ``urgency`` (any text,
# empty, or left out); the gate never reads it, so any string up to this length is taken.
RAW_PRIORITY_MAX = 255
CLIENT_STATUSES = ("Active", "Inactive", "Closed")


class WhmcsId(fields.Integer):
    """An id, as int or as WHMCS's digit string; 0 means none."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(strict=False, validate=validate.Range(0, MAX_ID, error=(
            f"Must be a WHMCS id from 0 to {MAX_ID}.")), **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> int:
        # 5.0 is the JSON (and JSON Schema) integer 5; 5.5 is not an id
        if (isinstance(value, float) and not value.is_integer()) or (
                isinstance(value, str) and not value.strip().isdigit()):
            raise ValidationError("Not a valid WHMCS id (whole number).")
        return super()._deserialize(value, attr, data, **kw)


class WholeNumber(fields.Integer):
    """A JSON integer: 5 and 5.0 (the same integer to JSON Schema), never "5", 5.5 or true."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(strict=False, **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                isinstance(value, float) and not value.is_integer()):
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kw)


class WhmcsBool(fields.Field):
    """WHMCS checkbox values: true/false, 1/0, "1"/"0", "on"/"" and "true"/"false"."""

    _true = (True, 1, "1", "on", "true")
    _false = (False, 0, "0", "", "off", "false", None)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> bool:
        if isinstance(value, (bool, int, str)) or value is None:
            probe = value.strip().lower() if isinstance(value, str) else value
            if probe in self._true:
                return True
            if probe in self._false:
                return False
        raise ValidationError("Not a valid WHMCS boolean (true/false, 1/0, on/'').")


def _text(max_len: int = 255, **kw: Any) -> fields.String:
    return fields.String(validate=validate.Length(max=max_len), **kw)


def _priority(**kw: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(TICKET_PRIORITIES), **kw)


class _Vars(Schema):
    class Meta:
        unknown = EXCLUDE  # left out and named by load_event (version skew), not refused


class InvoiceVars(_Vars):
    invoiceid = WhmcsId(required=True)
    # the invoice's client: not in WHMCS's vars; the stub adds it from tblinvoices when it
    # sends the event (absent from an older stub, or when the invoice was not found)
    userid = WhmcsId()


class SystemOrAdmin(fields.Field):
    """InvoiceCreated's ``user``: the string "system" or an admin id (int or digits)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 5.0 is the JSON integer 5
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID:
            return str(value)
        if isinstance(value, str) and len(value) <= 64:
            return value
        raise ValidationError('Must be "system" or an admin id.')


class InvoiceCreatedVars(InvoiceVars):
    source = _text(32)
    user = SystemOrAdmin()
    status = _text(32)


class ServiceVars(_Vars):
    serviceid = WhmcsId(required=True)
    userid = WhmcsId(required=True)
    pid = WhmcsId()


class ClientAddVars(_Vars):
    client_id = WhmcsId(required=True)
    user_id = WhmcsId()
    groupid = WhmcsId()


class OldClientData(_Vars):
    groupid = WhmcsId()
    status = fields.String(validate=validate.OneOf(CLIENT_STATUSES))


class ClientEditVars(_Vars):
    userid = WhmcsId(required=True)
    groupid = WhmcsId()
    status = fields.String(validate=validate.OneOf(CLIENT_STATUSES))
    language = _text(64)
    olddata = fields.Nested(OldClientData)
    adminuser = _text(255)  # the admin who made the change (the stub, from CurrentUser)


class ClientCloseVars(_Vars):
    userid = WhmcsId(required=True)


class TicketOpenVars(_Vars):
    ticketid = WhmcsId(required=True)
    ticketmask = _text(128)
    userid = WhmcsId()
    deptid = WhmcsId()
    priority = _priority()


class TicketUserReplyVars(TicketOpenVars):
    replyid = WhmcsId()
    status = _text(64)


class TicketPriorityChangeVars(_Vars):
    ticketid = WhmcsId(required=True)
    priority = _priority(required=True)


class TicketOpenValidationVars(_Vars):
    clientId = WhmcsId()
    contactId = WhmcsId()
    isAdmin = WhmcsBool()
    departmentId = WhmcsId(required=True)
    priority = _text(RAW_PRIORITY_MAX)  # raw: WHMCS normalises it only after the hook
    # Not WHMCS's: the stub adds the language the client reads (a WHMCS language name)
    language = _text(64)


class NoVars(_Vars):
    pass


class RejectedEvent(_Vars):
    """One event the bridge refused, as the stub keeps it in its spool."""

    webhook_id = _text(255, required=True)
    hook = _text(64, required=True)
    rejected_at = _text(40, required=True)  # ISO 8601 in UTC, as the stub wrote it
    reason = _text(1000)


class AfterCronJobVars(_Vars):
    """The heartbeat: the stub's report of the events the bridge refused, kept 30 days in its
    spool (no keys: none)."""

    rejected_count = WholeNumber(validate=validate.Range(0, MAX_ID))
    rejected_recent = fields.List(fields.Nested(RejectedEvent), validate=validate.Length(max=50))


class ClientSummaryVars(_Vars):
    userid = WhmcsId(required=True)


class TicketViewVars(_Vars):
    ticketid = WhmcsId(required=True)
    userid = WhmcsId()  # looked up by the stub in tbltickets; 0 or absent for a guest


class ClientPageVars(_Vars):
    """Client-area pages: the stub adds the logged-in client (0 = nobody) and the language
    the page is shown in (a WHMCS language name)."""

    userid = WhmcsId()
    language = _text(64)


class HomepageVars(ClientPageVars):
    """The client-area home: when the client posted the banner's trust unlock form, the
    stub adds ``vipgate_action`` (trust_unlock) and the form's ``vipgate_token``."""

    vipgate_action = _text(32)
    vipgate_token = _text(100)


VARS_SCHEMAS: dict[str, type[Schema]] = {
    "InvoiceCreated": InvoiceCreatedVars,
    "InvoicePaid": InvoiceVars,
    "InvoiceUnpaid": InvoiceVars,
    "InvoiceCancelled": InvoiceVars,
    "InvoiceRefunded": InvoiceVars,
    "AddInvoicePayment": InvoiceVars,
    "AfterModuleSuspend": ServiceVars,
    "AfterModuleUnsuspend": ServiceVars,
    "ClientAdd": ClientAddVars,
    "ClientEdit": ClientEditVars,
    "ClientClose": ClientCloseVars,
    "TicketOpen": TicketOpenVars,
    "TicketOpenAdmin": TicketOpenVars,
    "TicketUserReply": TicketUserReplyVars,
    "TicketPriorityChange": TicketPriorityChangeVars,
    "TicketOpenValidation": TicketOpenValidationVars,
    "PreCronJob": NoVars,
    "AfterCronJob": AfterCronJobVars,
    "DailyCronJob": NoVars,
    "AdminAreaClientSummaryPage": ClientSummaryVars,
    "AdminAreaViewTicketPage": TicketViewVars,
    "ClientAreaPageSubmitTicket": ClientPageVars,
    "ClientAreaHomepage": HomepageVars,
}
assert set(VARS_SCHEMAS) == set(HOOK_SPEC), "every hook in the spec needs a payload schema"


class Envelope(Schema):
    class Meta:
        unknown = RAISE

    hook = fields.String(required=True, validate=validate.OneOf(
        list(HOOK_SPEC), error="Unknown hook; expected one of the hooks vipgate forwards."))
    # No key field: a JSON object's keys are always strings, and checking each one cost more
    # than the rest of the envelope (the vars schema below names every key it accepts).
    vars = fields.Dict(required=True)
    # What a DATETIME column holds once in UTC (year 1 at +01:00 is year 0 in UTC: a 500).
    occurred_at = fields.AwareDateTime(required=True, format="iso", validate=validate.Range(
        datetime(1000, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        error="Must be between 1000-01-01 and 9999-12-31 in UTC."))


# Schemas hold no per-load state: made once, shared by every request (the bench showed
# per-request construction costing more than the load itself).
_ENVELOPE = Envelope()
_VARS = {hook: schema() for hook, schema in VARS_SCHEMAS.items()}


def whitelist() -> dict[str, list[str]]:
    """Per hook, the top-level vars keys accepted (compared with the PHP stub's list)."""
    return {hook: sorted(schema().fields) for hook, schema in VARS_SCHEMAS.items()}


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error dict as ``{"vars.invoiceid": ["..."]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            flat.update(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def unknown_keys(schema: Schema, values: Any, prefix: str = "") -> list[str]:
    """The keys of ``values`` that ``schema`` does not name, dotted (``olddata.x``), nested
    objects and lists of objects included; what ``EXCLUDE`` leaves out."""
    if not isinstance(values, dict):
        return []
    found = []
    for key, value in values.items():
        field = schema.fields.get(key)
        if field is None:
            found.append(f"{prefix}{key}")
        elif isinstance(field, fields.Nested) and isinstance(field.schema, Schema):
            found += unknown_keys(field.schema, value, f"{prefix}{key}.")
        elif (isinstance(field, fields.List) and isinstance(field.inner, fields.Nested)
              and isinstance(value, list)):
            for item in value:
                found += [k for k in unknown_keys(field.inner.schema, item, f"{prefix}{key}.")
                          if k not in found]
    return found


def load_event(document: Any) -> dict[str, Any]:
    """Validate a parsed body; return ``{"hook", "vars", "occurred_at", "ignored"}`` with
    coerced vars; ``ignored``: the vars keys left out as unknown (dotted paths).

    Raises ValidationError whose ``messages`` use the dotted paths of ``flatten_errors``.
    """
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
    return {"hook": envelope["hook"], "vars": variables, "occurred_at": envelope["occurred_at"],
            "ignored": unknown_keys(_VARS[envelope["hook"]], envelope["vars"])}

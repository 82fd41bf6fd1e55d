"""Invoice events: any change to an invoice can change its client's standing."""

from hooks.registry import Subjects, on


@on("InvoiceCreated", "InvoicePaid", "InvoiceUnpaid", "InvoiceCancelled", "InvoiceRefunded",
    "AddInvoicePayment")
def invoice_changed(invoiceid: int, userid: int | None) -> Subjects:
    # WHMCS's hooks carry only the invoice id; the stub adds the invoice's client (userid)
    # from tblinvoices when it sends the event. Without it (an older stub, an invoice it did
    # not find) the engine looks up whose invoice it is.
    if userid:
        return Subjects(clients=frozenset({userid}))
    return Subjects(invoices=frozenset({invoiceid}))

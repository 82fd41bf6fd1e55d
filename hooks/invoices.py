"""Invoice events: any change to an invoice can change its client's standing."""

from hooks.registry import Subjects, on


@on("InvoiceCreated", "InvoicePaid", "InvoiceUnpaid", "InvoiceCancelled", "InvoiceRefunded",
    "AddInvoicePayment")
def invoice_changed(invoiceid: int) -> Subjects:
    # The hooks carry only the invoice id; the engine looks up whose invoice it is.
    return Subjects(invoices=frozenset({invoiceid}))

"""The settings page's words: a title per section, and per key a label and a one-line help
(worded like config.example.ini's comments)."""

from __future__ import annotations

SECTION_TITLES = {"policy": "Policy: standing and VIP", "tickets": "Tickets",
                  "panels": "Inside WHMCS"}
TEXTS: dict[tuple[str, str], tuple[str, str]] = {
    ("policy", "vip_group_id"): ("VIP group", "The client group vipgate manages; none = no VIP "
                                 "group yet."),
    ("policy", "default_group_id"): ("Default group", "Group a client returns to when it "
                                     "leaves VIP and had none before."),
    ("policy", "grace_days"): ("Grace days", "Days an unpaid invoice may be overdue before its "
                               "client counts as overdue."),
    ("policy", "grace_in_business_days"): ("Grace in business days", "Count grace in business "
                                           "days (Mon-Fri), e.g. for boletos paid on a "
                                           "weekend."),
    ("policy", "pending_grace_days"): ("Payment Pending grace days", "Extra days for invoices "
                                       "in \"Payment Pending\" (bank clearing)."),
    ("policy", "collections_owed"): ("Collections is owed", "Invoices in \"Collections\" "
                                     "are owed from their due date like Unpaid ones (off: "
                                     "ignored)."),
    ("policy", "min_overdue_amount"): ("Minimum overdue amount", "Overdue balances below this "
                                       "amount are ignored."),
    ("policy", "promote_by_rules"): ("Promote by rules", "Move clients into VIP by the rules "
                                     "below (tenure, payment history, spend); off = VIP is "
                                     "whoever staff put there."),
    ("policy", "min_tenure_months"): ("Minimum tenure (months)", "VIP eligibility by rule: "
                                      "account age in months."),
    ("policy", "late_tolerance_days"): ("Late payment tolerance (days)", "VIP eligibility: no "
                                        "invoice paid more than this many days late within "
                                        "the lookback."),
    ("policy", "lookback_months"): ("Lookback (months)", "VIP eligibility: the months looked "
                                    "back at for late payments and spend."),
    ("policy", "min_spend"): ("Minimum spend", "VIP eligibility: at least this much paid "
                              "within the lookback."),
    ("policy", "promise_restores_vip"): ("Promise restores VIP", "A staff-registered promise "
                                         "to pay also restores VIP (otherwise only payment "
                                         "does)."),
    ("policy", "follow_staff_changes"): ("Follow staff changes", "Follow group changes made "
                                         "by staff (pin when moved into VIP, unpin when moved "
                                         "out)."),
    ("tickets", "billing_departments"): ("Billing departments", "Departments where clients "
                                         "may always open tickets, e.g. billing."),
    ("tickets", "priority_vip"): ("Priority: VIP clients", "Ticket priority of VIP clients in "
                                  "good standing; keep = leave what the client chose."),
    ("tickets", "priority_current"): ("Priority: clients in good standing", "Ticket priority "
                                      "of current clients; keep = leave what the client "
                                      "chose."),
    ("tickets", "priority_overdue"): ("Priority: overdue clients", "Ticket priority of overdue "
                                      "clients; keep = leave what the client chose."),
    ("tickets", "priority_suspended"): ("Priority: suspended clients", "Ticket priority of "
                                        "suspended clients; keep = leave what the client "
                                        "chose."),
    ("tickets", "block_when"): ("Block new tickets", "Block new tickets outside billing "
                                "departments: suspended, overdue or never."),
    ("tickets", "block_after_days"): ("Block after (days)", "Block only after this many days "
                                      "overdue (0 = at once; with suspended it also blocks "
                                      "overdue clients past this many days when set)."),
    ("tickets", "staff_note"): ("Staff note", "Add a staff note listing overdue invoices to "
                                "tickets of overdue/suspended clients."),
    ("tickets", "fail_open"): ("Fail open", "If the bridge does not answer in time, let the "
                               "ticket through (on) or refuse it (off). Written into the PHP "
                               "stub: run vipgate install-stub again after a change."),
    ("tickets", "ungated_tickets"): ("Tickets that skip the gate", "A blocked client's "
                                     "ticket that arrives outside billing without meeting the "
                                     "gate (e-mailed in): move_and_reply = move it to the first "
                                     "billing department and reply with the block message; "
                                     "reply = only reply; keep = leave it."),
    ("tickets", "block_message_pt_br"): ("Block message (Português)", "What a blocked client "
                                         "is told in Portuguese. Placeholders: {invoices}, "
                                         "{total}, {days}, {link}; {{ or }} for a brace."),
    ("tickets", "block_message_en"): ("Block message (English)", "What a blocked client is "
                                      "told in English. Placeholders: {invoices}, {total}, "
                                      "{days}, {link}; {{ or }} for a brace."),
    ("panels", "home_banner"): ("Client-area banner", "Show overdue clients a banner with "
                                "what they owe and pay links on the client-area home."),
    ("panels", "admin_url"): ("Admin page address", "Where staff's browsers reach vipgate's "
                              "admin page, for the link on the client summary panel; empty = "
                              "[bridge] public_url."),
}

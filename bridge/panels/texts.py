"""The words of vipgate's panels inside WHMCS, in Portuguese (Brazil) and English.

Staff panels use ``[bridge] language``; client-facing ones the language the client sees WHMCS
in, else the client's WHMCS language, else ``[bridge] language``. The reasons under "why" are
the engine's own sentences (English), as the audit log and the admin page show them."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "current": "Current",
        "overdue": "Overdue",
        "suspended": "Suspended",
        "days_1": "{n} day",
        "days_n": "{n} days",
        "invoices_1": "{n} invoice",
        "invoices_n": "{n} invoices",
        "unknown": "vipgate has not evaluated this client yet.",
        "standing": "Standing",
        "vip": "VIP",
        "vip_in": "in the VIP group",
        "vip_out_eligible": "out of the VIP group until paid (eligible)",
        "vip_out": "not in the VIP group",
        "pinned": "pinned by staff",
        "excluded": "excluded by staff",
        "held": "kept in VIP by staff since {since} while owing, until paid up",
        "held_by": "kept in VIP by {by} since {since} while owing, until paid up",
        "promise": "Promise to pay until {until}",
        "overdue_invoices": "Overdue invoices",
        "due": "due {date}",
        "why_standing": "Why this standing",
        "why_vip": "Why this VIP decision",
        "last_changes": "Last changes",
        "no_changes": "none yet",
        "updated": "as of {at}",
        "open_admin": "Open in vipgate",
        "priority_lowered": "priority lowered by vipgate (was {was})",
        "priority_raised": "priority raised by vipgate (was {was})",
        "priority_set": "priority set by vipgate",
        "notice_title": "Only the billing department is open to you now",
        "banner_overdue": "You have {count} overdue, {total} in all.",
        "banner_suspended": "Your services are suspended: {count} overdue, {total} in all.",
        "pay": "Pay invoice {number}",
        "pay_all": "See your invoices",
    },
    "pt_BR": {
        "current": "Em dia",
        "overdue": "Em atraso",
        "suspended": "Suspenso",
        "days_1": "{n} dia",
        "days_n": "{n} dias",
        "invoices_1": "{n} fatura",
        "invoices_n": "{n} faturas",
        "unknown": "O vipgate ainda não avaliou este cliente.",
        "standing": "Situação",
        "vip": "VIP",
        "vip_in": "no grupo VIP",
        "vip_out_eligible": "fora do grupo VIP até pagar (elegível)",
        "vip_out": "fora do grupo VIP",
        "pinned": "fixado pela equipe",
        "excluded": "excluído pela equipe",
        "held": "mantido no VIP pela equipe desde {since} com débito, até quitar",
        "held_by": "mantido no VIP por {by} desde {since} com débito, até quitar",
        "promise": "Promessa de pagamento até {until}",
        "overdue_invoices": "Faturas vencidas",
        "due": "venceu em {date}",
        "why_standing": "Por que esta situação",
        "why_vip": "Por que esta decisão de VIP",
        "last_changes": "Últimas mudanças",
        "no_changes": "nenhuma ainda",
        "updated": "em {at}",
        "open_admin": "Abrir no vipgate",
        "priority_lowered": "prioridade reduzida pelo vipgate (era {was})",
        "priority_raised": "prioridade elevada pelo vipgate (era {was})",
        "priority_set": "prioridade definida pelo vipgate",
        "notice_title": "No momento, só o departamento financeiro está disponível para você",
        "banner_overdue": "Você tem {count} em atraso, {total} no total.",
        "banner_suspended": "Seus serviços estão suspensos: {count} em atraso, {total} no "
                            "total.",
        "pay": "Pagar fatura {number}",
        "pay_all": "Ver suas faturas",
    },
}
PRIORITY_NAMES = {"pt_BR": {"Low": "Baixa", "Medium": "Média", "High": "Alta"}}


def text(language: str, key: str, **values: object) -> str:
    return TEXTS[language][key].format(**values)


def counted(language: str, key: str, n: int) -> str:
    """``"2 invoices"`` / ``"1 fatura"``."""
    return text(language, f"{key}_{'1' if n == 1 else 'n'}", n=n)


def priority_name(language: str, priority: str) -> str:
    return PRIORITY_NAMES.get(language, {}).get(priority, priority)

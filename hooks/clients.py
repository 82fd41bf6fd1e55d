"""Client events. ClientEdit also comes back for vipgate's own UpdateClient calls; the engine
recognises those and follows only the group changes staff made."""

from hooks.registry import Subjects, on


@on("ClientAdd")
def client_added(client_id: int) -> Subjects:
    return Subjects(clients=frozenset({client_id}))


@on("ClientEdit", "ClientClose")
def client_changed(userid: int, adminuser: str | None) -> Subjects:
    # adminuser: who made the change, when an admin did (the stub reads WHMCS's CurrentUser)
    return Subjects(clients=frozenset({userid}), staff=adminuser or None)

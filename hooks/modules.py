"""Service (module) events: a suspension turns an overdue client into a suspended one."""

from hooks.registry import Subjects, on


@on("AfterModuleSuspend", "AfterModuleUnsuspend")
def service_suspension_changed(userid: int) -> Subjects:
    return Subjects(clients=frozenset({userid}))

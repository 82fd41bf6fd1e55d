"""The web app: the factory (:mod:`bridge.web.app`, gunicorn's ``bridge.web.app:create_app()``),
``POST /hooks/whmcs`` (:mod:`~bridge.web.webhook`), ``GET /healthz`` and ``GET /metrics``
(:mod:`~bridge.web.health`) and the JSON error bodies (:mod:`~bridge.web.errors`). The admin
page (:mod:`bridge.admin`) is a package of its own that the factory adds."""

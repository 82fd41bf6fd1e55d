"""The hello-world baseline: a bare Flask app served by the same gunicorn settings as the bridge.

It answers ``POST /hooks/whmcs`` (the same path, so the load generators send byte-identical
requests to both servers) and ``GET /hello`` with a small JSON body. It reads the request body,
as the bridge does, and does nothing else: no signature check, no validation, no database.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.post("/hooks/whmcs")
def hook() -> Response:
    request.get_data(cache=False)
    response = jsonify({"status": "ok"})
    response.status_code = 200
    return response


@app.get("/hello")
def hello() -> Response:
    return jsonify({"status": "ok"})

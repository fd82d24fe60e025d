"""Schemathesis against the app's own /openapi.json (issue 12): valid and invalid bodies for every
operation, on a tiny model; no answer is a 5xx and every error is a JSON body naming what was wrong.

Bounded: MAX_EXAMPLES per operation and mode, derandomised, so CI time stays near a minute.
"""

from __future__ import annotations

import json

import schemathesis
from hypothesis import HealthCheck, settings

from mechscope.server.app import create_app
from mechscope.server.settings import Limits, Settings
from tests.conftest import tiny_model

MAX_EXAMPLES = 15
app = create_app(
    tiny_model("llama"),
    # testserver: the Host that schemathesis' in-process client sends.
    Settings(allowed_hosts=["testserver"], limits=Limits(max_prompt_tokens=48, max_new_tokens=8)),
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_every_error_is_json(case: schemathesis.Case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    if response.status_code >= 400:
        body = json.loads(response.text)
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], response.text

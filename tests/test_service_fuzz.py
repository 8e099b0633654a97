"""Schemathesis fuzzing of the OpenAPI spec: whatever a client sends, the service never answers 5xx.

Every operation is called with generated valid and invalid inputs, with the API token (so write
endpoints get past auth), against a library holding one analysed clip.
"""

from __future__ import annotations

import time

import pytest

schemathesis = pytest.importorskip("schemathesis")
import requests  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
)

from vidlens.service import ServiceSettings, create_app  # noqa: E402
from vidlens.service.testing import (  # noqa: E402
    StandInClassifier,
    StandInEncoders,
    StandInTagger,
    running_server,
)

EXAMPLES = {"positive": 10, "negative": 6}
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def served(tmp_path_factory, clip_factory):
    """A server on loopback holding one analysed clip: (app, token, base URL, HTTP session)."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "videos").mkdir()
    clip = clip_factory(duration=1.0, size=(64, 48), speech="fuzz", lang="en")
    app = create_app(root / "lib", ServiceSettings(max_upload_bytes=256 * 1024, ingest_roots=[root / "videos"]),
                     encoders=StandInEncoders(),
                     engines={"classifier": StandInClassifier(), "tagger": StandInTagger(["fuzz"])})
    with running_server(app) as url, requests.Session() as http:
        token = app.state.vidlens.token
        up = http.post(f"{url}/api/v1/videos", data=clip.read_bytes(), headers={"Authorization": f"Bearer {token}"})
        job = up.json()["job"]["id"]
        for _ in range(400):
            if http.get(f"{url}/api/v1/jobs/{job}").json()["status"] == "done":
                break
            time.sleep(0.05)
        yield app, token, url, http


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_no_input_gets_a_server_error(served, mode):
    _app, token, url, http = served
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET" and not operation.path_parameters \
                and not operation.query:
            continue  # nothing to make invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES[mode.value], deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(base_url=url, session=http, headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:
            raise AssertionError(f"{operation.label} ({mode.value}): {exc}") from exc
        checked.append(operation.label)
    assert len(checked) >= 15, checked

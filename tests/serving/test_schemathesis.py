"""Property-based fuzzing of the server against its own OpenAPI schema (schemathesis + hypothesis).

Both schema-valid and schema-violating requests are generated for every operation; media parts carry random
URLs and base64, which must be refused with a 4xx. Checked on every response: no 5xx, a documented status and
content type, a body that matches the documented schema, invalid input rejected, auth not ignored.
"""

from __future__ import annotations

from collections import Counter

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev extra: pip install -e '.[dev]'")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

KEY = "fuzz-key"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection, ignored_auth]
EXAMPLES = 40  # per generation mode, over all operations


@pytest.fixture(scope="module")
def api_schema(tiny, experts, tmp_path_factory):
    from serving_helpers import write_wav

    from affectllm.serving import MediaPolicy, ServeSettings, create_app

    media = tmp_path_factory.mktemp("fuzz-media")
    write_wav(media / "clip.wav")
    app = create_app(*tiny, ServeSettings(api_key=KEY, media=MediaPolicy(allowed_dir=media), max_new_tokens=4,
                                          max_body_bytes=2**20, model_id="tiny"), experts=experts)
    yield schemathesis.openapi.from_asgi("/openapi.json", app, headers={"Authorization": f"Bearer {KEY}"})
    app.state.engine.close()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_no_server_errors(api_schema, mode):
    statuses: Counter[int] = Counter()

    @given(case=api_schema.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def fuzz(case):
        response = case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=CHECKS)
        statuses[response.status_code] += 1

    fuzz()
    print(f"{mode.value}: statuses {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= EXAMPLES // 2
    assert all(s < 500 for s in statuses), statuses
    assert any(400 <= s < 500 for s in statuses), "the fuzzer must have reached the refusal paths"

import json
import os

import pytest

from stripe_sandbox.testing import SandboxHandle, sandbox, sandbox_server, webhook_receiver  # noqa: F401

from . import spec_check


@pytest.fixture(autouse=True)
def spec_conformance(monkeypatch):
    """Every answer a test's StripeClient gets is checked against Stripe's OpenAPI
    spec (errors included); a test whose traffic breaks the spec fails. Without
    the spec (or jsonschema) nothing is checked here; test_spec_conformance.py
    then skips with the reason."""
    if not spec_check.SPEC.exists():
        yield None
        return
    try:
        checker = spec_check.checker()
    except ImportError:
        yield None
        return
    recorder = spec_check.Recorder(checker)
    original = SandboxHandle.client

    def client(self, api_key=None, **options):
        options.setdefault("http_client", spec_check.recording_http_client(recorder))
        return original(self, api_key, **options)

    monkeypatch.setattr(SandboxHandle, "client", client)
    yield recorder
    log = os.environ.get("STRIPE_SANDBOX_CONFORMANCE_LOG")
    if log:  # for the README's figures: one line per checked answer
        with open(log, "a") as fh:
            for seen in recorder.seen:
                fh.write(json.dumps({k: seen[k] for k in ("method", "spec_path", "status")}
                                    | {"ok": not seen["errors"]}) + "\n")
    assert not recorder.failures, "answers that break Stripe's OpenAPI spec:\n" + recorder.report()

from stripe_sandbox.testing import sandbox, sandbox_server, webhook_receiver  # noqa: F401

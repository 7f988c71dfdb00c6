"""htmx is the npm registry's build, vendored unchanged (crm/static/crm/vendor/htmx/README.md),
served by the app itself on every page, allowed by the CSP (scripts from 'self' only)."""
import hashlib
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

HTMX = Path(__file__).resolve().parents[1] / "static/crm/vendor/htmx"
HTMX_VERSION = "2.0.11"
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


def test_htmx_file_is_the_pinned_npm_build():
    data = (HTMX / "htmx.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256
    assert f'version:"{HTMX_VERSION}"'.encode() in data
    assert b"sourceMappingURL" not in data  # nothing else for collectstatic to find
    readme = (HTMX / "README.md").read_text()
    assert HTMX_VERSION in readme and HTMX_SHA256 in readme
    assert b"Zero-Clause BSD" in (HTMX / "LICENSE").read_bytes()


def test_htmx_is_found_by_staticfiles():
    assert finders.find("crm/vendor/htmx/htmx.min.js") == str(HTMX / "htmx.min.js")


@pytest.mark.django_db
def test_every_page_loads_htmx_locally_under_the_csp(client, staff_a):
    client.force_login(staff_a)
    response = client.get("/invoices/")
    body = response.content.decode()
    assert '<script src="/static/crm/vendor/htmx/htmx.min.js" defer></script>' in body
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp and "cdn" not in csp.lower()

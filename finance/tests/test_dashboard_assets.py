"""The chart library is Chart.js from the npm registry, vendored unchanged (see
finance/static/finance/vendor/chartjs/README.md), and served by the app itself."""
import hashlib
from pathlib import Path

from django.contrib.staticfiles import finders

CHARTJS = Path(__file__).resolve().parents[1] / "static/finance/vendor/chartjs"
CHARTJS_VERSION = "4.5.1"
CHARTJS_SHA256 = "48444a82d4edcb5bec0f1965faacdde18d9c17db3063d042abada2f705c9f54a"
CHARTJS_MAP_SHA256 = "8c328df49d295935c81d64d3b36d6ac1c20c385f1ba5b4df3ec12a26b3d64d9b"


def test_chartjs_file_is_the_pinned_npm_build():
    data = (CHARTJS / "chart.umd.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == CHARTJS_SHA256
    assert data.startswith(b"/*!\n * Chart.js v" + CHARTJS_VERSION.encode())
    assert b"MIT" in (CHARTJS / "LICENSE.md").read_bytes()
    assert CHARTJS_VERSION in (CHARTJS / "README.md").read_text() and CHARTJS_SHA256 in (CHARTJS / "README.md").read_text()


def test_chartjs_is_found_by_staticfiles():
    assert finders.find("finance/vendor/chartjs/chart.umd.min.js") == str(CHARTJS / "chart.umd.min.js")
    assert finders.find("finance/dashboard.js")


def test_chartjs_source_map_is_the_pinned_npm_build():
    """The minified file names its map; production's manifest storage needs it present."""
    assert b"sourceMappingURL=chart.umd.min.js.map" in (CHARTJS / "chart.umd.min.js").read_bytes()
    data = (CHARTJS / "chart.umd.min.js.map").read_bytes()
    assert hashlib.sha256(data).hexdigest() == CHARTJS_MAP_SHA256
    assert CHARTJS_MAP_SHA256 in (CHARTJS / "README.md").read_text()

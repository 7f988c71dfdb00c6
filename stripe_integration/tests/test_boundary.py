"""Only the gateway (stripe_integration/gateway/client.py) imports `stripe` (the sandbox aside).

The same rule is an import-linter contract (.importlinter, `lint-imports`); this test also
catches dynamic imports (`importlib.import_module("stripe")`), which import-linter cannot see."""
import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {ROOT / "stripe_integration" / "gateway" / "client.py"}
SKIP_DIRS = {".venv", "venv", "stripe_sandbox", "node_modules", ".git"}


def _imports_stripe(path: Path) -> bool:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == "stripe" or a.name.startswith("stripe.") for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
            node.module == "stripe" or node.module.startswith("stripe.")
        ):
            return True
        if isinstance(node, ast.Call) and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) in {"__import__", "import_module"}:
            if node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).split(".")[0] == "stripe":
                return True
    return False


def _python_files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        for name in filenames:
            if name.endswith(".py"):
                yield Path(dirpath) / name


def test_gateway_is_the_only_module_importing_stripe():
    offenders = sorted(str(p.relative_to(ROOT)) for p in _python_files() if p not in ALLOWED and _imports_stripe(p))
    assert offenders == []


def test_boundary_check_detects_an_import(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("from stripe import StripeClient\n")
    assert _imports_stripe(sample)
    sample.write_text("import importlib\nimportlib.import_module('stripe')\n")
    assert _imports_stripe(sample)
    sample.write_text("from .stripe_things import x\nimport stripe_sandbox\n")
    assert not _imports_stripe(sample)
    assert _imports_stripe(ROOT / "stripe_integration" / "gateway" / "client.py")

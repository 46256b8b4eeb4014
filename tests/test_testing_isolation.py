"""Production entry modules never import the test-only package ``ggk_ebms.testing``.

Each check runs in a fresh interpreter, so modules imported by other tests in this process do not
count.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each check starts a fresh interpreter

# The entry points an operator runs (the CLI root and every command module), the server process
# and the services it composes.
PRODUCTION_MODULES = [
    "ggk_ebms.cli.main",
    "ggk_ebms.cli.config_cmd",
    "ggk_ebms.cli.cpa_cmd",
    "ggk_ebms.cli.db_cmd",
    "ggk_ebms.cli.demo_cmd",
    "ggk_ebms.cli.devcerts_cmd",
    "ggk_ebms.cli.mailbox_cmd",
    "ggk_ebms.cli.messages_cmd",
    "ggk_ebms.cli.ping_cmd",
    "ggk_ebms.cli.routes_cmd",
    "ggk_ebms.cli.send_cmd",
    "ggk_ebms.cli.serve_cmd",
    "ggk_ebms.cli.submit_cmd",
    "ggk_ebms.cli.worker_cmd",
    "ggk_ebms.cli.aanleveren_cmd",
    "ggk_ebms.cli.audit_cmd",
    "ggk_ebms.cli.ops_support",
    "ggk_ebms.server.run",
    "ggk_ebms.server.app",
    "ggk_ebms.pipeline.inbound",
    "ggk_ebms.pipeline.worker",
    "ggk_ebms.pipeline.ping",
    "ggk_ebms.delivery.worker",
    "ggk_ebms.delivery.submit",
]


def loaded_after_import(modules: list[str]) -> set[str]:
    """The ggk_ebms modules a fresh interpreter holds after importing ``modules``."""
    program = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('ggk_ebms'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout))


def test_production_modules_do_not_import_the_testing_package() -> None:
    loaded = loaded_after_import(PRODUCTION_MODULES)
    assert set(PRODUCTION_MODULES) <= loaded
    assert not {m for m in loaded if m == "ggk_ebms.testing" or m.startswith("ggk_ebms.testing.")}


@pytest.mark.parametrize(
    "module", ["ggk_ebms.testing.faults", "ggk_ebms.testing.pki", "ggk_ebms.testing.demo"]
)
def test_the_testing_package_is_importable(module: str) -> None:
    assert module in loaded_after_import([module])

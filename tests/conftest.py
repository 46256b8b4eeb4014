"""Shared test fixtures: the ../shared oracle and the databases.

``../shared`` (beside the project root) holds reference material that tests read as an oracle.
Without it those tests skip with a visible reason, unless GGK_EBMS_REQUIRE_SHARED=1 (CI), where
its absence is a failure. PostgreSQL tests use GGK_EBMS_TEST_PG_URL (default: the project
machines' 127.0.0.1:5432, database ``test``); they skip when it is unreachable, unless
GGK_EBMS_REQUIRE_POSTGRES=1 (CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("GGK_EBMS_SHARED_DIR", PROJECT_ROOT.parent / "shared"))


def require_shared(*parts: str) -> Path:
    """Path inside ../shared; skip (or fail under GGK_EBMS_REQUIRE_SHARED=1) when absent."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        reason = f"reference material not found: {path} (../shared beside the project)"
        if os.environ.get("GGK_EBMS_REQUIRE_SHARED") == "1":
            pytest.fail(reason + "; GGK_EBMS_REQUIRE_SHARED=1 demands it")
        pytest.skip(reason)
    return path


@pytest.fixture
def shared_dir() -> Path:
    return require_shared()

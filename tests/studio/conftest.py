"""Studio fixtures: a folder holding a copy of the shipped policy, and a client for the
studio serving it (the token sent, the Host the studio is bound to)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from .studio_support import POLICY, make_client


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    root.mkdir()
    shutil.copy(POLICY, root / POLICY.name)
    return root


@pytest.fixture
def client(folder: Path) -> TestClient:
    return make_client(folder)

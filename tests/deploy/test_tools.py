"""A missing checker skips the test on a developer's machine and fails it in CI."""

from __future__ import annotations

import pytest

from tests.deploy.tools import require_tool


def test_a_missing_tool_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y no-such-package"):
        require_tool("no-such-tool-vpp", "no-such-package")


def test_a_missing_tool_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it, not skip"):
        require_tool("no-such-tool-vpp", "no-such-package")

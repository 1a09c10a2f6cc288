"""The JavaScript CRM service, tested the same way (needs `node` on the PATH)."""

import shutil

import pytest

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def test_the_original_handler_runs_unchanged(eventgateway):
    eventgateway.emit("user.created", data={"username": "ada", "company": "Test Corp, Inc."})

    invocation = eventgateway.wait_for_invocation("addUserToCRM")

    assert invocation.ok, invocation.error
    assert invocation.result == {"message": "success"}
    assert "Saving user to CRM:" in invocation.output
    assert "Test Corp, Inc." in invocation.output

"""shared/spec/walkthrough.md step 2 on a gateway that requires keys (`eg serve`'s default):
the first deploy claims the space and saves its key, later `eg` commands read it, and
someone else's deploy to the same space fails saying so.

Every `eg` command runs as its own subprocess, as a person types it; a person is a
credentials file (``XDG_CONFIG_HOME``, which the subprocesses inherit).
"""

from __future__ import annotations

import json
import os
import pathlib
import stat
from collections.abc import Iterator

import pytest

from tests.e2e.test_walkthrough import check_invocation, invocations, service_copy
from tests.support.process import GatewayProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("claim") / "data", auth=True)
    process.start()
    yield process
    process.stop()


def test_the_first_deploy_claims_and_later_commands_use_the_saved_key(
    secured, tmp_path, monkeypatch
):
    crm = service_copy("crm-service", tmp_path)
    credentials = pathlib.Path(os.environ["XDG_CONFIG_HOME"]) / "eventgateway" / "credentials.json"

    first = secured.eg(crm, "deploy").stdout
    assert f"Claimed space acme-crm; its admin key is saved in {credentials}\n" in first
    assert "Deployed crm-service:" in first
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    saved = json.loads(credentials.read_text())["gateways"][secured.config_url]["acme-crm"]
    assert saved["apiKey"] not in first
    assert "No changes" in secured.eg(crm, "deploy").stdout

    # 3. Emit, then read the logs: `eg logs` needs a key of the space, found in the file.
    secured.eg(crm, "emit", "--event", "user.created", "--data", "@event.json")
    (only,) = invocations(secured, crm, 1)
    check_invocation(only, "'company': 'Test Corp, Inc.'")

    # Someone else (another credentials file) deploying to acme-crm is told it is taken.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "someone-else"))
    refused = secured.eg(crm, "deploy", expect=1)
    assert refused.stderr.splitlines()[-1] == (
        "Error: space acme-crm is already claimed by someone else: deploy to another space "
        "(custom.eventgateway.space) or ask its owner for a key (EG_API_KEY)"
    )
    assert not (tmp_path / "someone-else").exists()

    # A key given explicitly needs no credentials file.
    with_key = secured.eg(crm, "deploy", "--api-key", saved["apiKey"])
    assert "No changes" in with_key.stdout

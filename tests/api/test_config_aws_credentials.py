"""AWS functions without keys on a whole gateway: refused in auth mode unless the operator
lends the gateway's credentials (``--aws-default-credentials``), accepted in the open mode.

A 400 at registration (create and update); a function stored before the setting changed
fails its calls, not retried, with the same explanation. No call reaches the AWS SDK.
"""

from __future__ import annotations

from typing import Any

from eventgateway.model.entities import Function, encode_entity
from tests.auth.authkit import auth_gateway, bearer
from tests.support.inprocess import in_process_gateway

SPACE = "acme"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:addUser"
KEYS = {"awsAccessKeyId": "AKIDTENANT", "awsSecretAccessKey": "tenant-secret"}
REFUSAL = (
    "a function without both keys would be signed with the gateway's own AWS credentials, "
    "which this gateway does not lend to functions (its operator allows that with eg serve "
    "--aws-default-credentials)"
)


def lambda_body(**keys: str) -> dict[str, Any]:
    provider = {"arn": ARN, "region": "us-east-1", **keys}
    return {"functionId": "addUser", "type": "awslambda", "provider": provider}


def message(response: Any) -> str:
    return str(response.json()["errors"][0]["message"])


async def test_auth_mode_refuses_a_function_without_keys_and_accepts_one_with_keys():
    async with auth_gateway() as gw:
        key = bearer((await gw.claim(SPACE))["apiKey"])
        functions = f"/v1/spaces/{SPACE}/functions"
        refused = await gw.config.post(functions, json=lambda_body(), headers=key)
        listed = await gw.config.get(functions, headers=key)
        accepted = await gw.config.post(functions, json=lambda_body(**KEYS), headers=key)

    assert refused.status_code == 400
    assert message(refused) == (
        f"provider.awsAccessKeyId and provider.awsSecretAccessKey are missing: {REFUSAL}"
    )
    assert listed.json()["functions"] == []
    assert accepted.status_code == 201, accepted.text


async def test_auth_mode_counts_blank_keys_as_missing():
    async with auth_gateway() as gw:
        key = bearer((await gw.claim(SPACE))["apiKey"])
        blank = lambda_body(awsAccessKeyId=" ", awsSecretAccessKey="\t")
        refused = await gw.config.post(f"/v1/spaces/{SPACE}/functions", json=blank, headers=key)

    assert refused.status_code == 400
    assert message(refused) == (
        f"provider.awsAccessKeyId and provider.awsSecretAccessKey are missing: {REFUSAL}"
    )


async def test_auth_mode_refuses_an_update_that_drops_a_key():
    async with auth_gateway() as gw:
        token = (await gw.claim(SPACE))["apiKey"]
        await gw.create(SPACE, "functions", lambda_body(**KEYS), token)
        response = await gw.config.put(
            f"/v1/spaces/{SPACE}/functions/addUser",
            json=lambda_body(awsSecretAccessKey="tenant-secret"),
            headers=bearer(token),
        )
        stored = await gw.config.get(f"/v1/spaces/{SPACE}/functions/addUser", headers=bearer(token))

    assert response.status_code == 400
    assert message(response) == f"provider.awsAccessKeyId is missing: {REFUSAL}"
    assert stored.json()["provider"] == {"arn": ARN, "region": "us-east-1", **KEYS}


async def test_auth_mode_with_the_flag_accepts_a_function_without_keys():
    async with auth_gateway(aws_default_credentials=True) as gw:
        key = bearer((await gw.claim(SPACE))["apiKey"])
        response = await gw.config.post(
            f"/v1/spaces/{SPACE}/functions", json=lambda_body(), headers=key
        )

    assert response.status_code == 201, response.text
    assert response.json()["provider"] == {"arn": ARN, "region": "us-east-1"}


async def test_without_auth_a_function_without_keys_is_accepted_unless_the_flag_says_no():
    async with (
        in_process_gateway() as default,
        in_process_gateway(aws_default_credentials=False) as refusing,
    ):
        accepted = await default.config.post(f"/v1/spaces/{SPACE}/functions", json=lambda_body())
        refused = await refusing.config.post(f"/v1/spaces/{SPACE}/functions", json=lambda_body())

    assert accepted.status_code == 201, accepted.text
    assert refused.status_code == 400
    assert message(refused).endswith(REFUSAL)


async def test_a_function_stored_before_fails_its_call_with_the_same_explanation():
    async with auth_gateway() as gw:
        key = bearer((await gw.claim(SPACE))["apiKey"])
        # Registered while the gateway still lent its credentials (another setting, an
        # older version): already in the store.
        stored = Function(
            space=SPACE,
            function_id="addUser",
            type="awslambda",
            provider={"arn": ARN, "region": "us-east-1"},
        )
        await gw.gateway.store.create("functions", SPACE, "addUser", encode_entity(stored))
        response = await gw.config.post(
            f"/v1/spaces/{SPACE}/functions/addUser/invoke", json={}, headers=key
        )

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["ok"] is False
    assert answer["error"] == {
        "message": "function 'addUser': provider.awsAccessKeyId and "
        f"provider.awsSecretAccessKey are missing: {REFUSAL}"
    }

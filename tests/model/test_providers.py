"""AWS region names are recognised by shape, so a region can never name another host."""

from __future__ import annotations

import pytest

from eventgateway.model.providers import is_aws_region, normalise_provider


@pytest.mark.parametrize(
    "region",
    [
        "us-east-1",
        "eu-west-3",
        "ap-southeast-2",
        "il-central-1",
        "cn-north-1",
        "us-gov-west-1",
        "us-iso-east-1",
        "us-isob-east-1",
        "eu-isoe-west-1",
        "eusc-de-east-1",
    ],
)
def test_region_names_of_every_partition_are_accepted(region: str):
    assert is_aws_region(region)


@pytest.mark.parametrize(
    "region",
    [
        "",
        "r",
        "US-EAST-1",
        "us-east",
        "us-east-1.evil.example.com",
        "evil.example.com",
        "evil.com#",
        "us-east-1/",
        "us-east-1@evil",
        "127.0.0.1",
        "localhost:4566",
        " us-east-1",
        "us-east-1\n",
        None,
        1,
    ],
)
def test_anything_else_is_refused(region: object):
    assert not is_aws_region(region)


def test_the_configuration_api_still_echoes_any_region_as_the_original_did():
    # The check is made where the call is (providers/aws.py), not at registration: the
    # plugin compares this echo with what it sent.
    assert normalise_provider("awslambda", {"arn": "a", "region": "r"}) == {
        "arn": "a",
        "region": "r",
    }

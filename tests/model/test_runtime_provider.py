"""Provider config of functions the gateway runs itself (python, nodejs)."""

from __future__ import annotations

import pytest

from eventgateway.errors import ValidationError
from eventgateway.model.runtime_provider import RuntimeProviderError, normalise_runtime_provider
from eventgateway.model.validate import parse_function

BUNDLE = "a" * 64


def test_defaults_are_filled_in_and_echoed_in_a_fixed_order():
    echo = normalise_runtime_provider("python", {"handler": "handler.handler", "bundle": BUNDLE})
    assert list(echo.items()) == [
        ("bundle", BUNDLE),
        ("handler", "handler.handler"),
        ("runtime", "python3.11"),
        ("memorySize", 1024),
        ("timeout", 6),
        ("concurrency", 4),
        ("environment", {}),
    ]
    assert (
        normalise_runtime_provider("nodejs", {"handler": "index.handler", "bundle": BUNDLE})[
            "runtime"
        ]
        == "nodejs20.x"
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "provider must be an object"),
        ({"handler": "h.h"}, "provider.bundle must be the bundleId"),
        ({"bundle": "xyz", "handler": "h.h"}, "provider.bundle must be the bundleId"),
        ({"bundle": BUNDLE}, "provider.handler must look like 'module.function'"),
        ({"bundle": BUNDLE, "handler": "nodot"}, "provider.handler must look like"),
        ({"bundle": BUNDLE, "handler": "h.h", "runtime": "nodejs20.x"}, "is not a python runtime"),
        ({"bundle": BUNDLE, "handler": "h.h", "runtime": "python3.99"}, "use one of python3.8,"),
        ({"bundle": BUNDLE, "handler": "h.h", "runtime": "python3"}, "is not a python runtime"),
        ({"bundle": BUNDLE, "handler": "h.h", "memorySize": 64}, "provider.memorySize must be"),
        ({"bundle": BUNDLE, "handler": "h.h", "memorySize": True}, "provider.memorySize must be"),
        ({"bundle": BUNDLE, "handler": "h.h", "timeout": 0}, "provider.timeout must be"),
        ({"bundle": BUNDLE, "handler": "h.h", "concurrency": 2.5}, "provider.concurrency must"),
        ({"bundle": BUNDLE, "handler": "h.h", "environment": {"A": 1}}, "provider.environment"),
        ({"bundle": BUNDLE, "handler": "h.h", "environment": {"1A": "x"}}, "provider.environment"),
        (
            {"bundle": BUNDLE, "handler": "h.h", "environment": {"K": "a\x00b"}},
            "provider.environment.K must not contain a NUL character",
        ),
        ({"bundle": BUNDLE, "handler": "h.h", "memory": 5}, "unknown key(s) memory"),
    ],
)
def test_invalid_configs_name_the_field(config, message):
    with pytest.raises(
        RuntimeProviderError, match=r"^.*" + message.replace("(", r"\(").replace(")", r"\)")
    ):
        normalise_runtime_provider("python", config)


def test_function_bodies_of_runtime_types_validate_with_the_resource_template():
    function = parse_function(
        "acme",
        {
            "functionId": "crm",
            "type": "python",
            "provider": {"bundle": BUNDLE, "handler": "handler.handler"},
        },
    )
    assert function.type == "python"
    assert function.provider["memorySize"] == 1024
    with pytest.raises(ValidationError) as caught:
        parse_function(
            "acme", {"functionId": "crm", "type": "nodejs", "provider": {"bundle": BUNDLE}}
        )
    assert caught.value.message.startswith(
        "Function doesn't validate. Validation error: provider.handler"
    )

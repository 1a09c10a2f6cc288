"""Serverless variables: sources, defaults, interpolation, types, loops and their errors."""

from __future__ import annotations

from typing import Any

import pytest

from eventgateway.deploy.variables import (
    VariableError,
    VariableSources,
    effective_stage,
    format_path,
    resolve_variables,
)
from eventgateway.errors import ConfigError

ENV = {"HOST": "gw.test", "PORT": "4000", "STAGE": "qa", "EMPTY": ""}


def resolve(value: Any, *, stage: str | None = None, options: dict[str, str] | None = None) -> Any:
    """The resolved ``custom.value`` of a document holding ``value`` and a few neighbours."""
    document = {
        "provider": {"stage": "${opt:stage, 'prov'}"},
        "custom": {
            "value": value,
            "shared": {"memory": 512, "tags": ["a", "b"]},
            "prod": {"url": "https://prod.test"},
            "dev": {"url": "http://dev.test"},
            "mem": "${self:custom.shared.memory}",
            "enabled": True,
        },
    }
    sources = VariableSources(environ=ENV, options=options or {}, stage=stage)
    return resolve_variables(document, sources)["custom"]["value"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${env:HOST}", "gw.test"),
        ("${env:NOPE, 'fallback'}", "fallback"),
        ('${env:NOPE, "double"}', "double"),
        ("${env:NOPE, 'a,b}c'}", "a,b}c"),
        ("${env:EMPTY, 'unused'}", ""),
        ("${env:NOPE}", None),  # whole value, unset: "no value"
        ("${env:NOPE, ${env:ALSO_NOPE}}", None),
        ("http://${env:HOST}:${env:PORT}/x", "http://gw.test:4000/x"),
        ("${self:custom.shared.memory}", 512),
        ("${self:custom.shared}", {"memory": 512, "tags": ["a", "b"]}),
        ("${self:custom.shared.tags.1}", "b"),
        ("${self:custom.mem}", 512),  # itself a variable
        ("mem-${self:custom.mem}", "mem-512"),
        ("on=${self:custom.enabled}", "on=true"),
        ("${opt:count, 3}", 3),
        ("${opt:ratio, 0.5}", 0.5),
        ("${opt:flag, false}", False),
        ("${opt:nope, env:HOST}", "gw.test"),
        ("${opt:stage, ${env:STAGE, 'dev'}}", "qa"),
        ("${opt:stage, ${env:NOPE, 'dev'}}", "dev"),
        ("${Token}", "${Token}"),  # CloudFormation's, not a variable
        ("plain", "plain"),
        (42, 42),
    ],
)
def test_values_resolve(value: Any, expected: Any):
    assert resolve(value) == expected


def test_a_variable_inside_a_self_address_is_resolved_first():
    value = "${self:custom.${sls:stage}.url}"

    assert resolve(value, stage="prod") == "https://prod.test"
    assert resolve(value, stage="dev") == "http://dev.test"


@pytest.mark.parametrize(
    ("stage", "options", "expected"),
    [
        ("cli", {"stage": "opt"}, "cli"),
        (None, {"stage": "opt"}, "opt"),
        (None, {}, "prov"),  # provider.stage (itself ${opt:stage, 'prov'})
    ],
)
def test_stage_sources(stage: str | None, options: dict[str, str], expected: str):
    assert resolve("${sls:stage}", stage=stage, options=options) == expected
    assert resolve("${opt:stage, 'prov'}", stage=stage, options=options) == expected


def test_sls_stage_defaults_to_dev_without_provider_stage():
    resolved = resolve_variables({"a": "${sls:stage}", "provider": {}}, VariableSources())

    assert resolved["a"] == "dev"


def test_lists_and_nested_mappings_are_walked():
    document: dict[str, Any] = {"a": [{"b": "${env:HOST}"}, "${env:PORT}"], "n": None}

    resolved = resolve_variables(document, VariableSources(environ=ENV))

    assert resolved == {"a": [{"b": "gw.test"}, "4000"], "n": None}
    assert document["a"][1] == "${env:PORT}", "the input is not changed"


def test_skipped_sections_are_copied_but_self_can_still_point_into_them():
    document = {
        "resources": {"Arn": "${AWS::Region}-${ssm:/x}", "Name": "${env:HOST}"},
        "name": "${self:resources.Name}",
    }

    resolved = resolve_variables(
        document, VariableSources(environ=ENV), skip=lambda path: path == ("resources",)
    )

    assert resolved["resources"] == document["resources"]
    assert resolved["name"] == "gw.test"


def test_file_variables_use_the_reader():
    files = {"./config.yml": {"space": "acme", "url": "${env:HOST}", "nested": {"k": 1}}}

    def read(name: str) -> Any:
        if name not in files:
            raise FileNotFoundError(name)
        return files[name]

    document = {
        "space": "${file(./config.yml):space}",
        "url": "${file(./config.yml):url}",
        "k": "${file(./config.yml):nested.k}",
        "whole": "${file(./config.yml)}",
        "fallback": "${file(./missing.yml):x, 'dflt'}",
    }
    resolved = resolve_variables(document, VariableSources(environ=ENV, read_file=read))

    assert resolved["space"] == "acme"
    assert resolved["url"] == "gw.test"
    assert resolved["k"] == 1
    assert resolved["whole"]["nested"] == {"k": 1}
    assert resolved["fallback"] == "dflt"


@pytest.mark.parametrize(
    ("document", "path", "fragments"),
    [
        (
            {"custom": {"url": "http://${env:NOPE}/x"}},
            ("custom", "url"),
            ["${env:NOPE}", "environment variable NOPE is not set", "${env:NOPE, 'value'}"],
        ),
        (
            {"provider": {"region": "${opt:region}"}},
            ("provider", "region"),
            ["${opt:region}", "option --region was not given", "add a default"],
        ),
        (
            {"a": "${self:custom.missing}", "custom": {}},
            ("a",),
            ["custom.missing is not in the file"],
        ),
        (
            {"a": "${opt:x, ${env:NOPE}} text"},
            ("a",),
            ["option --x was not given", "environment variable NOPE is not set"],
        ),
        (
            {"custom": {"a": "${self:custom.b}", "b": "${self:custom.a}"}},
            ("custom", "a"),
            ["loop", "custom.a → custom.b → custom.a"],
        ),
        (
            {"a": {"b": "${self:a}"}},
            ("a", "b"),
            ["loop"],
        ),
        (
            {"custom": {"key": "${ssm:/path/to/key}"}},
            ("custom", "key"),
            ["'ssm' variable source is not supported by eg", "${env:NAME}"],
        ),
        ({"a": "${cf:stack.Output}"}, ("a",), ["'cf' variable source is not supported"]),
        ({"a": "${sls:instanceId}"}, ("a",), ["'sls' variable source is not supported"]),
        ({"a": "${file(./x.yml):k}"}, ("a",), ["file(./x.yml)", "not supported"]),
        ({"a": "${env:HOST"}, ("a",), ["never closed"]),
        ({"a": "x-${self:b}", "b": {"c": 1}}, ("a",), ["is a mapping", "whole value"]),
        ({"a": "${opt:x, dev}"}, ("a",), ["quote a literal default ('dev')"]),
        ({"a": "${env:HOST,}"}, ("a",), ["empty choice"]),
        ({"l": ["ok", "${env:NOPE}-x"]}, ("l", 1), ["NOPE"]),
        (
            {"custom": {"eventTypes": {"thing.${sls:stage}": None}}},
            ("custom", "eventTypes", "thing.${sls:stage}"),
            ["not resolved in keys", "write the key out"],
        ),
    ],
)
def test_errors_name_the_key_path_the_variable_and_the_fix(
    document: dict[str, Any], path: tuple[str | int, ...], fragments: list[str]
):
    with pytest.raises(VariableError) as caught:
        resolve_variables(document, VariableSources(environ=ENV))

    assert caught.value.path == path
    assert str(caught.value).startswith(format_path(path) + ": ")
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert isinstance(caught.value, ConfigError)


def test_a_failing_file_reader_is_reported_with_the_variable():
    def read(name: str) -> Any:
        raise ValueError("eg reads only .yml, .yaml and .json files")

    with pytest.raises(VariableError, match=r"^a: \$\{file\(\./x\.js\)\}: eg reads only"):
        resolve_variables({"a": "${file(./x.js):k}"}, VariableSources(read_file=read))


def test_a_missing_file_without_default_is_an_error():
    def read(name: str) -> Any:
        raise FileNotFoundError(name)

    with pytest.raises(VariableError, match=r"file \./x\.yml does not exist"):
        resolve_variables({"a": "${file(./x.yml):k}"}, VariableSources(read_file=read))


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("functions", "addUserToCRM", "handler"), "functions.addUserToCRM.handler"),
        (("functions", "a", "events", 0, "eventgateway"), "functions.a.events[0].eventgateway"),
        (("custom", "eventTypes", "user.created"), 'custom.eventTypes["user.created"]'),
        ((), "(document)"),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str):
    assert format_path(path) == text


@pytest.mark.parametrize(
    ("stage", "options", "provider", "expected"),
    [
        ("a", {"stage": "b"}, "c", "a"),
        (None, {"stage": "b"}, "c", "b"),
        (None, {}, "c", "c"),
        (None, {}, None, "dev"),
        ("", {"stage": ""}, "", "dev"),
    ],
)
def test_effective_stage(stage: str | None, options: dict[str, str], provider: Any, expected: str):
    assert effective_stage(stage, options, provider) == expected

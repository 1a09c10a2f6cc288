"""Global options of the client commands: flag > EG_* variable > serverless.yml > default."""

from __future__ import annotations

import pathlib
import textwrap

import click
import pytest
from click.testing import CliRunner

from eventgateway.cli.context import (
    CliOptions,
    ServiceFile,
    _url_of,
    error_message,
    gateway_options,
    reporting_errors,
)
from eventgateway.errors import ConfigError
from eventgateway.sdk._wire import GatewayError

VARIABLES = ("EG_URL", "EG_CONFIG_URL", "EG_SPACE", "EG_API_KEY", "EG_OUTPUT", "EG_DEBUG")

SERVICE = """
service: crm-service
provider:
  name: eventgateway
custom:
  eventgateway:
    url: http://gateway.test:4000
    space: acme-crm
    apiKey: ${env:CRM_KEY, 'from-default'}
"""


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    for name in (*VARIABLES, "CRM_KEY", "CRM_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(
    *args: str, env: dict[str, str] | None = None
) -> tuple[list[CliOptions], click.testing.Result]:
    seen: list[CliOptions] = []

    @click.command()
    @gateway_options()
    def show(*, options: CliOptions) -> None:
        seen.append(options)

    return seen, CliRunner().invoke(show, list(args), env=env)


def resolved(*args: str, env: dict[str, str] | None = None) -> CliOptions:
    seen, result = run(*args, env=env)
    assert result.exit_code == 0, result.output
    return seen[0]


def write_service(directory: pathlib.Path, text: str = SERVICE) -> None:
    (directory / "serverless.yml").write_text(textwrap.dedent(text), encoding="utf-8")


def test_without_anything_the_defaults_apply(workdir):
    assert resolved() == CliOptions(
        url="http://localhost:4000",
        config_url=None,
        space="default",
        api_key=None,
        output="table",
        debug=False,
    )


def test_a_hosted_style_url_names_the_space_when_none_is_given(workdir):
    # As the SDK reads it: the gateway (--domain localhost) routes acme.localhost to /acme/.
    hosted = resolved("--url", "http://acme.localhost:4000")
    assert hosted.space == "acme"
    assert resolved("--url", "http://acme.localhost:4000", "--space", "acme").space == "acme"
    assert resolved("--url", "http://localhost:4000").space == "default"


def test_serverless_yml_gives_url_space_and_key(workdir):
    write_service(workdir)

    options = resolved()

    assert (options.url, options.space, options.api_key) == (
        "http://gateway.test:4000",
        "acme-crm",
        "from-default",
    )


def test_env_variables_win_over_serverless_yml(workdir):
    write_service(workdir)

    options = resolved(
        env={"EG_URL": "http://env:4000", "EG_SPACE": "env-space", "EG_API_KEY": "env-key"}
    )

    assert (options.url, options.space, options.api_key) == (
        "http://env:4000",
        "env-space",
        "env-key",
    )


def test_flags_win_over_env_variables(workdir):
    write_service(workdir)

    options = resolved(
        "--url",
        "http://flag:4000",
        "--space",
        "flag-space",
        "--api-key",
        "flag-key",
        "--config-url",
        "http://flag:4001",
        env={"EG_URL": "http://env:4000", "EG_SPACE": "env-space", "EG_CONFIG_URL": "http://e"},
    )

    assert options == CliOptions(
        url="http://flag:4000",
        config_url="http://flag:4001",
        space="flag-space",
        api_key="flag-key",
    )


def test_configuration_url_comes_from_flag_then_env_then_serverless_yml(workdir):
    write_service(workdir, SERVICE + "    configurationUrl: http://file:4001\n")

    assert resolved().config_url == "http://file:4001"
    assert resolved(env={"EG_CONFIG_URL": "http://env:4001"}).config_url == "http://env:4001"
    flag = resolved("--config-url", "http://flag:4001", env={"EG_CONFIG_URL": "http://env:4001"})
    assert flag.config_url == "http://flag:4001"


def test_output_and_debug_come_from_flags_or_env(workdir):
    assert resolved("--output", "json", "--debug").json
    assert resolved(env={"EG_OUTPUT": "json"}).output == "json"
    assert resolved("-o", "table", env={"EG_OUTPUT": "json"}).output == "table"


def test_env_reference_in_serverless_yml_reads_the_variable(workdir):
    write_service(workdir)

    assert resolved(env={"CRM_KEY": "from-env"}).api_key == "from-env"


def test_unset_env_reference_without_default_means_no_key(workdir):
    write_service(
        workdir,
        """
        custom:
          eventgateway:
            apiKey: ${env:CRM_KEY}
        """,
    )

    assert resolved().api_key is None


def test_access_key_is_an_alias_of_api_key(workdir):
    write_service(workdir, "custom: {eventgateway: {accessKey: old-style}}")

    assert resolved().api_key == "old-style"


def test_env_reference_inside_a_value_is_substituted(workdir):
    write_service(
        workdir,
        """
        custom:
          eventgateway:
            url: http://${env:CRM_HOST, "localhost"}:4000
        """,
    )

    assert resolved().url == "http://localhost:4000"
    assert resolved(env={"CRM_HOST": "gw"}).url == "http://gw:4000"


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("http://${env:CRM_HOST}:4000", "environment variable CRM_HOST is not set"),
        ("${self:custom.url}", "custom.url is not in the file"),
        ("${ssm:/gw/url}", "ssm"),
    ],
)
def test_unresolvable_values_fail_in_one_line_naming_the_key(workdir, value, named):
    write_service(workdir, f'custom: {{eventgateway: {{url: "{value}"}}}}')

    seen, result = run()

    assert result.exit_code == 1
    assert result.output.startswith("Error: serverless.yml:1: custom.eventgateway.url: ")
    assert named in result.output
    assert len(result.output.splitlines()) == 1
    assert seen == []


def test_self_opt_and_sls_variables_resolve_as_eg_deploy_resolves_them(workdir):
    write_service(
        workdir,
        """
        provider: {stage: prod}
        custom:
          hosts: {prod: gw.internal}
          eventgateway:
            url: http://${self:custom.hosts.${sls:stage}}:4000
            space: crm-${opt:stage, 'dev'}
        """,
    )

    options = resolved()

    assert options.url == "http://gw.internal:4000"
    assert options.space == "crm-prod"  # ${opt:stage} is the stage in use, as in eg deploy


def test_a_value_given_by_flag_is_not_read_from_the_file(workdir):
    write_service(workdir, 'custom: {eventgateway: {url: "${self:nope}", space: svc}}')

    assert resolved("--url", "http://flag:4000").space == "svc"


def test_broken_yaml_fails_naming_the_file_and_line(workdir):
    write_service(workdir, "service: s\ncustom: [unclosed\n")

    _, result = run()

    assert result.exit_code == 1
    assert result.output.startswith("Error: serverless.yml:3: invalid YAML: ")
    assert len(result.output.splitlines()) == 1


@pytest.mark.parametrize("text", ["service: x\n", "", "custom: {other: 1}\n"])
def test_serverless_yml_without_the_section_gives_defaults(workdir, text):
    write_service(workdir, text)

    assert resolved() == CliOptions()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("custom: 3\n", "serverless.yml:1: custom: must be a mapping"),
        ("custom:\n  eventgateway: [1]\n", "serverless.yml:2: custom.eventgateway: must be a"),
        ("- a list\n", "serverless.yml:1: (document): must be a mapping with service:"),
    ],
)
def test_a_malformed_section_is_an_error_as_in_eg_deploy(workdir, text, message):
    write_service(workdir, text)

    _, result = run()

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {message}"), result.output


def test_cloudformation_tags_elsewhere_in_the_file_do_no_harm(workdir):
    write_service(workdir, SERVICE + "resources:\n  Bucket: !Ref Name\n")

    assert resolved().space == "acme-crm"


def test_service_file_reads_the_given_environment(tmp_path):
    path = tmp_path / "serverless.yml"
    path.write_text("custom: {eventgateway: {space: '${env:S}', url: 'http://${env:S}'}}")

    service = ServiceFile(path, environ={"S": "from-mapping"})

    assert service.get("space") == "from-mapping"
    assert service.get("url") == "http://from-mapping"
    assert service.get("apiKey", "accessKey") is None


def test_unexpected_errors_become_one_line_and_a_traceback_only_with_debug(capsys):
    for debug in (False, True):
        with pytest.raises(click.ClickException) as caught, reporting_errors("u", debug=debug):
            raise RuntimeError("boom")

        assert caught.value.message == "RuntimeError: boom (run with --debug for the traceback)"
        assert ("Traceback" in capsys.readouterr().err) is debug


def test_config_errors_keep_their_message():
    with pytest.raises(click.ClickException) as caught, reporting_errors("u", debug=False):
        raise ConfigError("bad\nvalue")

    assert caught.value.message == "bad value"


def test_no_answer_names_the_url_and_hints_at_eg_serve():
    message = error_message(GatewayError("ConnectError: refused"), "http://h:4000")

    assert message == (
        "cannot reach the gateway at http://h:4000: ConnectError: refused; "
        "start one with `eg serve`, or point --url at yours"
    )


@pytest.mark.parametrize(
    "cause",
    [
        "RemoteProtocolError: Server disconnected without sending a response.",
        # The same hang-up with the request unread resets the connection (seen in CI).
        "ReadError: [Errno 104] Connection reset by peer",
    ],
)
def test_a_plain_http_hang_up_hints_at_https(cause: str):
    message = error_message(GatewayError(cause), "http://h:4001", "--config-url")

    assert message == (
        f"cannot reach the gateway at http://h:4001: {cause}; "
        "if it serves HTTPS (eg serve --tls-cert), use https:// in --config-url"
    )


def test_an_answered_error_is_the_gateways_message():
    assert error_message(GatewayError('Function "x" not found.', status=404), "u") == (
        'Function "x" not found.'
    )


@pytest.mark.parametrize(
    ("options", "api", "expected"),
    [
        (CliOptions(url="http://h:5000"), "events", ("http://h:5000", "--url")),
        (
            CliOptions(url="http://h:5000", config_url="http://c:1"),
            "config",
            ("http://c:1", "--config-url"),
        ),
        (CliOptions(url="http://h:5000"), "config", ("http://h:4001", "--url (or --config-url)")),
    ],
)
def test_the_unreachable_url_is_the_one_the_command_used(options, api, expected):
    assert _url_of(options, api) == expected


# -- values checked before any request ------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["emit", "--event", "user.created"], ["functions", "ls"], ["logs", "-f", "fn"]]
)
@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--url", "notaurl"),
        ("--url", "localhost:4000"),
        ("--url", "http://"),
        ("--config-url", "ftp://gateway.test"),
        ("--url", "http://a b"),
        ("--url", "http://gateway.test\t:4000"),
        ("--url", "http://a<b>:4000"),
        ("--url", "http://gateway.test:99999"),
        ("--config-url", "http://gateway test:4001"),
    ],
)
def test_a_url_flag_without_http_scheme_and_host_is_a_usage_error(workdir, command, flag, value):
    from eventgateway.cli.main import cli

    result = CliRunner().invoke(cli, [*command, flag, value])

    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{flag}': {value!r} is not an http(s) URL" in result.stderr


@pytest.mark.parametrize("value", ["notaurl", "http://a b"])
def test_a_bad_url_variable_is_refused_naming_the_variable(workdir, value):
    from eventgateway.cli.main import cli

    result = CliRunner().invoke(cli, ["functions", "ls"], env={"EG_URL": value})

    assert result.exit_code == 2, result.output
    assert f"Invalid value for '--url': {value!r} (from EG_URL) is not" in result.stderr


@pytest.mark.parametrize("space", ["Bad Space!", "ab", "a/b"])
def test_a_space_the_gateway_would_refuse_is_a_usage_error(workdir, space):
    from eventgateway.cli.main import cli

    result = CliRunner().invoke(cli, ["emit", "--event", "user.created", "--space", space])

    assert result.exit_code == 2, result.output
    assert f"Invalid value for '--space': {space!r} is not a valid space name" in result.stderr


@pytest.mark.parametrize(
    "url",
    ["https://acme.gateway.test", "http://[::1]:4000/", "http://gw_1:4000", "http://bücher.test"],
)
def test_valid_urls_and_spaces_pass(workdir, url):
    options = resolved("--url", url, "--space", "acme.crm-2_x")

    assert (options.url, options.space) == (url, "acme.crm-2_x")

"""serverless.yml → ServiceSpec: the walkthrough, the plugin's schema, extensions, messages.

Files are real (``tmp_path``) and read as ``serverless.yml`` from the working directory,
so messages read ``serverless.yml:<line>: <key path>: …``. In the error tables the line
that must be named carries the comment ``# <-``.
"""

from __future__ import annotations

import pathlib
import textwrap
from typing import Any

import pytest

from eventgateway.deploy.manifest import load_service
from eventgateway.deploy.model import (
    CorsSpec,
    EventTypeSpec,
    FunctionSpec,
    GatewayTarget,
    ServiceSpec,
    SubscriptionSpec,
)
from eventgateway.errors import ConfigError

FILE = pathlib.Path("serverless.yml")

WALKTHROUGH = """\
service: crm-service
provider:
  name: eventgateway        # `aws` is accepted too and means the same here
  runtime: python3.11       # nodejs18.x / nodejs20.x run JavaScript handlers
custom:
  eventgateway:
    url: http://localhost:4000   # optional; the CLI default
    space: acme-crm              # any space not already claimed by someone else
    apiKey: ${env:EG_API_KEY}    # optional in dev mode; `accessKey` is accepted as an alias
functions:
  addUserToCRM:
    handler: handler.handler
    events:
      - eventgateway:
          event: user.created
plugins:
  - "@serverless/serverless-event-gateway-plugin"
"""

# Contract §6.1 with its placeholders filled in, minus the connector function.
CONTRACT = """\
service: shop-service
tenant: acme
app: shop
provider:
  name: aws
  runtime: nodejs20.x
  region: us-east-1
custom:
  eventgateway:
    url: http://localhost:4000
    configurationUrl: http://localhost:4001
    space: myspace
    accessKey: AK123
  eventTypes:
    user.created:
    http.request:
    user.secured:
      authorizer: authFunc
functions:
  hello:
    handler: handler.hello
    events:
      - eventgateway:
          type: sync
          eventType: http.request
          path: /hello
          method: GET
          cors: {origins: ["*"], methods: [GET], headers: [Authorization], allowCredentials: true}
      - eventgateway:
          event: http
          path: /users/:id
          method: GET
      - eventgateway:
          type: async
          eventType: user.secured
  authFunc:
    handler: auth.check
"""


@pytest.fixture(autouse=True)
def in_service_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(text: str, **kwargs: Any) -> ServiceSpec:
    FILE.write_text(textwrap.dedent(text), encoding="utf-8")
    kwargs.setdefault("environ", {})
    return load_service(FILE, **kwargs)


def service(functions: str, *, gateway: str = "", provider: str = "", custom: str = "") -> str:
    """A valid file around a ``functions:`` block; the other parts go under ``provider:``,
    ``custom.eventgateway:`` and ``custom:`` (each dedented, then indented)."""

    def under(text: str, indent: str) -> str:
        return textwrap.indent(textwrap.dedent(text), indent)

    return "\n".join(
        [
            "service: svc",
            "provider:",
            "  runtime: python3.11",
            under(provider, "  "),
            "custom:",
            "  eventgateway:",
            "    space: acme",
            under(gateway, "    "),
            under(custom, "  "),
            "functions:",
            under(functions, "  "),
        ]
    )


def one_event(event: str, function: str = "") -> str:
    return service(
        "f:\n  handler: handler.main\n"
        + textwrap.indent(textwrap.dedent(function), "  ")
        + "  events:\n    - eventgateway:\n"
        + textwrap.indent(textwrap.dedent(event), "        ")
    )


# -- the two reference files ---------------------------------------------------------------


def test_the_walkthrough_file_reads_as_one_async_subscription():
    spec = load(WALKTHROUGH)

    assert spec == ServiceSpec(
        name="crm-service",
        stage="dev",
        source=FILE,
        gateway=GatewayTarget(url="http://localhost:4000", space="acme-crm", api_key=None),
        functions=(
            FunctionSpec(
                key="addUserToCRM",
                function_id="addUserToCRM",
                type="python",
                provider={"handler": "handler.handler", "runtime": "python3.11"},
                line=11,
            ),
        ),
        subscriptions=(
            SubscriptionSpec(
                function_id="addUserToCRM",
                type="async",
                event_type="user.created",
                path="/acme-crm/",
                method="POST",
                where="functions.addUserToCRM.events[0]",
            ),
        ),
        event_types=(EventTypeSpec("user.created"),),
    )
    assert spec.metadata == {"service": "crm-service", "stage": "dev"}


def test_the_walkthrough_key_comes_from_the_environment_when_set():
    assert load(WALKTHROUGH, environ={"EG_API_KEY": "k1"}).gateway.api_key == "k1"


def test_the_contract_example():
    spec = load(CONTRACT)

    assert spec.gateway == GatewayTarget(
        url="http://localhost:4000",
        config_url="http://localhost:4001",
        space="myspace",
        api_key="AK123",
    )
    assert [(f.key, f.type, f.provider) for f in spec.functions] == [
        ("hello", "nodejs", {"handler": "handler.hello", "runtime": "nodejs20.x"}),
        ("authFunc", "nodejs", {"handler": "auth.check", "runtime": "nodejs20.x"}),
    ]
    cors = CorsSpec(("*",), ("GET",), ("Authorization",), allow_credentials=True)
    assert [(s.type, s.event_type, s.method, s.path, s.cors) for s in spec.subscriptions] == [
        ("sync", "http.request", "GET", "/myspace/hello", cors),
        ("sync", "http.request", "GET", "/myspace/users/:id", None),
        ("async", "user.secured", "POST", "/myspace/", None),
    ]
    assert spec.event_types == (
        EventTypeSpec("user.created"),
        EventTypeSpec("http.request"),
        EventTypeSpec("user.secured", authorizer_id="authFunc"),
    )
    assert spec.warnings == ()


# -- provider, stage, functions --------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "options", "provider_stage", "expected"),
    [
        ("cli", {"stage": "opt"}, "stage: prov", "cli"),
        (None, {"stage": "opt"}, "stage: prov", "opt"),
        (None, {}, "stage: prov", "prov"),
        (None, {}, "stage: ${opt:stage, 'fromdefault'}", "fromdefault"),
        (None, {}, "", "dev"),
    ],
)
def test_stage_precedence(
    stage: str | None, options: dict[str, str], provider_stage: str, expected: str
):
    text = service("f:\n  handler: h.main\n  environment: {STAGE: '${sls:stage}'}")
    text = text.replace("  runtime: python3.11", f"  runtime: python3.11\n  {provider_stage}")

    spec = load(text, stage=stage, options=options)

    assert spec.stage == expected
    assert spec.functions[0].provider["environment"] == {"STAGE": expected}


@pytest.mark.parametrize(
    ("provider_runtime", "function_runtime", "kind", "runtime"),
    [
        ("python3.11", None, "python", "python3.11"),
        ("python3.12", None, "python", "python3.12"),
        ("nodejs18.x", None, "nodejs", "nodejs18.x"),
        ("nodejs20.x", None, "nodejs", "nodejs20.x"),
        ("python3.11", "nodejs22.x", "nodejs", "nodejs22.x"),
        ("python3.8", None, "python", "python3.8"),
        ("python3.14", None, "python", "python3.14"),
        ("nodejs14.x", None, "nodejs", "nodejs14.x"),
        ("nodejs24.x", "python3.13", "python", "python3.13"),
    ],
)
def test_runtime_selects_the_function_type(
    provider_runtime: str, function_runtime: str | None, kind: str, runtime: str
):
    extra = f"\n  runtime: {function_runtime}" if function_runtime else ""
    text = service(f"f:\n  handler: h.main{extra}").replace("python3.11", provider_runtime)

    function = load(text).functions[0]

    assert (function.type, function.provider["runtime"]) == (kind, runtime)
    assert function.needs_bundle


def test_provider_holds_only_what_the_file_sets():
    spec = load(
        service(
            """
            plain:
              handler: h.plain
            tuned:
              handler: src/h.tuned
              memorySize: 256
              timeout: ${env:TIMEOUT}
              concurrency: 8
              environment: {B: override, C: 3, D: true}
            """,
            provider="memorySize: 1024\nenvironment: {A: a, B: b}",
        ),
        environ={"TIMEOUT": "30"},
    )

    assert [f.provider for f in spec.functions] == [
        {
            "handler": "h.plain",
            "runtime": "python3.11",
            "memorySize": 1024,
            "environment": {"A": "a", "B": "b"},
        },
        {
            "handler": "src/h.tuned",
            "runtime": "python3.11",
            "memorySize": 256,
            "timeout": 30,
            "concurrency": 8,
            "environment": {"A": "a", "B": "override", "C": "3", "D": "true"},
        },
    ]


def test_http_functions_name_and_options():
    spec = load(
        service(
            """
            webhook:
              type: http
              url: https://hooks.test/in
              name: webhook-v2
              description: ignored
              signingSecrets: [whsec_abc]
              contentMode: binary
            """
        )
    )

    assert spec.functions == (
        FunctionSpec(
            key="webhook",
            function_id="webhook-v2",
            type="http",
            provider={"url": "https://hooks.test/in"},
            options={"signingSecrets": ["whsec_abc"], "contentMode": "binary"},
            line=12,
        ),
    )
    assert not spec.functions[0].needs_bundle


# -- events ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("event: user.created", ("async", "user.created", "POST", "/acme/")),
        ("event: user.created\nmethod: put", ("async", "user.created", "PUT", "/acme/")),
        ("event: http\npath: users/:id", ("sync", "http.request", "GET", "/acme/users/:id")),
        ("event: http\nmethod: post\npath: /users",
         ("sync", "http.request", "POST", "/acme/users")),
        ("type: async\neventType: a.b", ("async", "a.b", "POST", "/acme/")),
        ("type: sync\neventType: http.request", ("sync", "http.request", "POST", "/acme/")),
        ("type: sync\neventType: http.request\nmethod: delete\npath: /x/*rest",
         ("sync", "http.request", "DELETE", "/acme/x/*rest")),
    ],
)  # fmt: skip
def test_event_styles(event: str, expected: tuple[str, str, str, str]):
    subscription = load(one_event(event)).subscriptions[0]

    assert (subscription.type, subscription.event_type, subscription.method, subscription.path) == (
        expected
    )
    assert subscription.where == "functions.f.events[0]"


@pytest.mark.parametrize(
    ("cors", "expected"),
    [
        ("cors: true", CorsSpec()),
        ("cors: false", None),
        ("cors: {origins: ['https://a.test'], headers: X-Y}",
         CorsSpec(("https://a.test",), None, ("X-Y",))),
    ],
)  # fmt: skip
def test_cors(cors: str, expected: CorsSpec | None):
    event = f"type: sync\neventType: http.request\n{cors}"

    assert load(one_event(event)).subscriptions[0].cors == expected


def test_delivery_extensions_go_into_options_verbatim():
    event = """\
    type: async
    eventType: user.created
    retryPolicy: {maxAttempts: 5, backoff: linear}
    delivery: at-most-once
    ordered: true
    """

    options = load(one_event(event)).subscriptions[0].options

    assert options == {
        "retryPolicy": {"maxAttempts": 5, "backoff": "linear"},
        "delivery": "at-most-once",
        "ordered": True,
    }


def test_event_types_declared_in_both_places_then_used_in_first_seen_order():
    spec = load(
        service(
            """
            auth:
              handler: h.auth
              name: auth-v1
            f:
              handler: h.main
              events:
                - eventgateway: {type: async, eventType: used.first}
                - eventgateway: {type: async, eventType: declared.b}
                - eventgateway: {type: async, eventType: guarded, authorizer: auth}
                - eventgateway: {event: used.first, path: /other}
            """,
            gateway="""
              eventTypes:
                declared.b:
                  authorizer: auth
            """,
            custom="""
              eventTypes:
                declared.a:
                declared.b: {authorizer: auth}
            """,
        )
    )

    assert spec.event_types == (
        EventTypeSpec("declared.a"),
        EventTypeSpec("declared.b", "auth-v1"),
        EventTypeSpec("used.first"),
        EventTypeSpec("guarded", "auth-v1"),
    )


def test_non_gateway_events_are_ignored_with_a_warning():
    spec = load(
        service(
            """
            f:
              handler: h.main
              events:
                - http: GET /users
                - eventgateway: {event: user.created}
                - sqs: arn:aws:sqs:x
            """
        )
    )

    assert len(spec.subscriptions) == 1
    assert spec.warnings == (
        "serverless.yml:15: functions.f.events[0]: ignored: eg only deploys eventgateway "
        "events (this one is http)",
        "serverless.yml:17: functions.f.events[2]: ignored: eg only deploys eventgateway "
        "events (this one is sqs)",
    )


# -- the rest of the file ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "expected"),
    [
        ("patterns: ['!tests/**', 'src/**']", ("!tests/**", "src/**")),
        ("include: [a.py]\nexclude: [node_modules/**, '*.md']",
         ("!node_modules/**", "!*.md", "a.py")),
        ("exclude: [x]\npatterns: [y]", ("!x", "y")),
        ("excludeDevDependencies: false", ()),
    ],
)  # fmt: skip
def test_package_patterns(package: str, expected: tuple[str, ...]):
    text = service("f:\n  handler: h.main") + "\npackage:\n" + textwrap.indent(package, "  ")

    assert load(text).package_patterns == expected


def test_old_style_service_name_alias_key_and_defaults():
    spec = load(
        """
        service:
          name: legacy
        provider: {name: aws, runtime: python3.11}
        custom:
          eventgateway:
            accessKey: ${env:KEY, 'ak'}
        functions:
          f: {handler: h.main}
        """
    )

    assert (spec.name, spec.gateway) == ("legacy", GatewayTarget(api_key="ak"))
    assert spec.gateway.space == "default"


def test_known_framework_and_aws_keys_are_quiet_even_with_unsupported_variables():
    text = service(
        """
        f:
          handler: h.main
          role: ${cf:stack.RoleArn}
          tags: {team: a}
          events:
            - http: {path: /x, authorizer: {arn: "${ssm:/authorizer}"}}
            - eventgateway: {event: user.created}
        """,
        provider="region: ${ssm:/region}\niam: {role: {statements: []}}\nstackTags: {a: b}",
        custom="customDomain: {certificateArn: '${ssm:/cert}'}",
    ) + textwrap.dedent(
        """
        frameworkVersion: '3'
        useDotenv: true
        configValidationMode: warn
        variablesResolutionMode: 20210326
        org: acme
        app: shop
        tenant: acme
        layers: {dep: {path: layer}}
        resources:
          Resources:
            Bucket:
              Type: AWS::S3::Bucket
              Properties:
                BucketName: !Sub "${AWS::StackName}-bucket"
                Tags: [{Key: a, Value: !Ref Other}]
        plugins: [serverless-python-requirements]
        """
    )

    spec = load(text)

    assert spec.warnings == (
        "serverless.yml:19: functions.f.events[0]: ignored: eg only deploys eventgateway "
        "events (this one is http)",
    )


def test_variables_from_self_and_file_keep_their_types(in_service_dir: pathlib.Path):
    (in_service_dir / "gateway.yml").write_text("space: from-file\n", encoding="utf-8")
    spec = load(
        """
        service: svc
        provider:
          runtime: python3.11
          environment: ${self:custom.env}
          memorySize: ${self:custom.memory}
        custom:
          memory: 512
          env: {A: '1'}
          eventgateway:
            space: ${file(./gateway.yml):space}
        functions:
          f: {handler: h.main}
        """
    )

    assert spec.gateway.space == "from-file"
    assert spec.functions[0].provider["memorySize"] == 512
    assert spec.functions[0].provider["environment"] == {"A": "1"}


def test_yaml_anchors_and_merge_keys_work():
    spec = load(
        """
        service: svc
        provider: {runtime: python3.11}
        x-common: &common
          handler: h.main
          memorySize: 256
        functions:
          a:
            <<: *common
          b:
            <<: *common
            memorySize: 512
        """
    )

    assert [f.provider["memorySize"] for f in spec.functions] == [256, 512]
    assert [w.split(": ", 2)[1] for w in spec.warnings] == ["x-common"]


def test_a_directory_means_its_serverless_yml(in_service_dir: pathlib.Path):
    FILE.write_text(WALKTHROUGH, encoding="utf-8")

    spec = load_service(in_service_dir, environ={})

    assert spec.source == in_service_dir / "serverless.yml"
    assert spec.directory == in_service_dir


# -- warnings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        (service("f: {handler: h.main}") + "\nplugin: [x]  # <-",
         "plugin: unknown key, ignored; did you mean 'plugins'?"),
        (service("f:\n  handler: h.main\n  memorysize: 512  # <-"),
         "functions.f.memorysize: unknown key, ignored; did you mean 'memorySize'?"),
        (service("f: {handler: h.main}", gateway="spaces: x  # <-"),
         "custom.eventgateway.spaces: unknown key, ignored; did you mean 'space'?"),
        (one_event("type: sync\neventType: http.request\ncros: true  # <-"),
         "functions.f.events[0].eventgateway.cros: unknown key, ignored; did you mean 'cors'?"),
        (service("f: {handler: h.main}", provider="name: google  # <-"),
         "provider.name: provider 'google' is not eventgateway or aws"),
        (service("f: {handler: h.main}") + "\npackage:\n  individually: true  # <-",
         "package.individually: not supported by eg"),
        (service("f:\n  type: http\n  url: http://x.test\n  handler: h.main  # <-"),
         "functions.f.handler: ignored for type: http"),
        (service("f: {handler: h.main}", gateway="apiKey: a\naccessKey: b  # <-"),
         "custom.eventgateway.accessKey: both apiKey and accessKey are set; apiKey is used"),
        ("service: svc  # <-\n", "functions: no functions: there is nothing to deploy"),
    ],
)  # fmt: skip
def test_warnings_name_file_line_and_key(text: str, warning: str):
    line = marked_line(text)

    warnings = load(text).warnings

    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"serverless.yml:{line}: {warning}")


# -- errors ----------------------------------------------------------------------------------


def marked_line(text: str) -> int:
    lines = textwrap.dedent(text).splitlines()
    return next((i for i, line in enumerate(lines, 1) if "# <-" in line), 1)


ERRORS = [
    ("no service", "provider: {runtime: python3.11}\n", "service", "is missing"),
    ("runtime", service("f: {handler: h.main}").replace("python3.11", "java17  # <-"),
     "provider.runtime", "runtime 'java17' is not a Lambda runtime eg supports; use one of "
     "python3.8, python3.9, python3.10, python3.11, python3.12, python3.13, python3.14, "
     "nodejs14.x, nodejs16.x, nodejs18.x, nodejs20.x, nodejs22.x, nodejs24.x"),
    ("runtime beyond Lambda's", service("f:\n  handler: h.main\n  runtime: python3.99  # <-"),
     "functions.f.runtime", "runtime 'python3.99' is not a Lambda runtime eg supports"),
    ("odd nodejs", service("f:\n  handler: h.main\n  runtime: nodejs21.x  # <-"),
     "functions.f.runtime", "runtime 'nodejs21.x' is not a Lambda runtime eg supports"),
    ("runtime without version", service("f:\n  handler: h.main\n  runtime: python3  # <-"),
     "functions.f.runtime", "use one of python3.8,"),
    ("nodejs without .x", service("f:\n  handler: h.main\n  runtime: nodejs20  # <-"),
     "functions.f.runtime", "use one of python3.8,"),
    ("no handler", service("f:  # <-\n  memorySize: 512"), "functions.f", "has no handler"),
    ("empty function", service("f:  # <-"), "functions.f", "is empty; give it a handler"),
    ("bad handler", service("f:\n  handler: handler  # <-"), "functions.f.handler",
     "must look like <path/module>.<function>"),
    ("handler outside", service("f:\n  handler: ../../evil.handler  # <-"),
     "functions.f.handler", "must name a file inside the service directory"),
    ("handler absolute", service("f:\n  handler: /etc/evil.handler  # <-"),
     "functions.f.handler", "must name a file inside the service directory"),
    ("handler dot dir", service("f:\n  handler: src/./users.create  # <-"),
     "functions.f.handler", "must name a file inside the service directory"),
    ("memory", service("f:\n  handler: h.main\n  memorySize: 64  # <-"),
     "functions.f.memorySize", "from 128 to 10240, got 64"),
    ("provider memory", service("f: {handler: h.main}", provider="memorySize: 20000  # <-"),
     "provider.memorySize", "from 128 to 10240"),
    ("timeout", service("f:\n  handler: h.main\n  timeout: 901  # <-"),
     "functions.f.timeout", "seconds from 1 to 900, got 901"),
    ("timeout text", service("f:\n  handler: h.main\n  timeout: soon  # <-"),
     "functions.f.timeout", "got 'soon'"),
    ("concurrency", service("f:\n  handler: h.main\n  concurrency: 0  # <-"),
     "functions.f.concurrency", "from 1 to 100, got 0"),
    ("unknown type", service("f:\n  type: awslambda  # <-"), "functions.f.type",
     "type 'awslambda' is not supported"),
    ("http no url", service("f:  # <-\n  type: http"), "functions.f.url", "type: http needs url:"),
    ("content mode", service("f:\n  handler: h.main\n  contentMode: raw  # <-"),
     "functions.f.contentMode", "must be structured or binary"),
    ("image", service("f:\n  image: repo/img:1  # <-"), "functions.f.image",
     "container images are not supported"),
    ("function id", service("f:\n  handler: h.main\n  name: 'a b'  # <-"), "functions.f.name",
     "function id 'a b' may hold only"),
    ("env name", service("f:\n  handler: h.main\n  environment:\n    1BAD: x  # <-"),
     "functions.f.environment.1BAD", "is not a valid variable name"),
    ("env null", service("f:\n  handler: h.main\n  environment:\n    KEY: ${env:NOPE}  # <-"),
     "functions.f.environment.KEY", "must be a string, got nothing (null)"),
    ("env nul", service('f:\n  handler: h.main\n  environment:\n    KEY: "a\\0b"  # <-'),
     "functions.f.environment.KEY", "must not contain a NUL character"),
    ("no runtime", "service: s\nfunctions:\n  f:  # <-\n    handler: h.main\n",
     "functions.f", "has no runtime; set provider.runtime"),
    ("events type", service("f:\n  handler: h.main\n  events:  # <-\n    eventgateway: {}"),
     "functions.f.events", "must be a list of events"),
    ("no event type", service("f:\n  handler: h.main\n  events:\n    - eventgateway:  # <-\n"
                              "        type: async"),
     "functions.f.events[0].eventgateway.eventType", "is required and missing"),
    ("bad sub type", one_event("type: queue  # <-\neventType: a"),
     "functions.f.events[0].eventgateway.type", "is 'queue'; use async"),
    ("empty event", service("f:\n  handler: h.main\n  events:\n    - eventgateway:  # <-"),
     "functions.f.events[0].eventgateway", "is empty"),
    ("indentation",
     service("f:\n  handler: h.main\n  events:\n    - eventgateway:  # <-\n      type: async"),
     "functions.f.events[0]", "has type next to eventgateway; indent them"),
    ("mixed styles", one_event("event: a.b  # <-\neventType: a.b"),
     "functions.f.events[0].eventgateway.event", "mixes the legacy event:"),
    ("event type name", one_event("type: async\neventType: 'user created'  # <-"),
     "functions.f.events[0].eventgateway.eventType", "may hold only letters"),
    ("method", one_event("event: http\nmethod: fetch  # <-"),
     "functions.f.events[0].eventgateway.method", "method 'fetch' is not one of GET, POST"),
    ("path", one_event("event: http\npath: /a?b=1  # <-"),
     "functions.f.events[0].eventgateway.path", "may not hold spaces, '?' or '#'"),
    ("async cors", one_event("event: user.created\ncors: true  # <-"),
     "functions.f.events[0].eventgateway.cors", "CORS applies only to sync subscriptions"),
    ("cors credentials", one_event("event: http\ncors:\n  allowCredentials: yes please  # <-"),
     "functions.f.events[0].eventgateway.cors.allowCredentials", "must be true or false"),
    ("sync retry", one_event("event: http\nretryPolicy: {maxAttempts: 3}  # <-"),
     "functions.f.events[0].eventgateway.retryPolicy", "applies only to async subscriptions"),
    ("delivery", one_event("event: a.b\ndelivery: exactly-once  # <-"),
     "functions.f.events[0].eventgateway.delivery", "must be at-least-once or at-most-once"),
    ("ordered", one_event("event: a.b\nordered: maybe  # <-"),
     "functions.f.events[0].eventgateway.ordered", "must be true or false"),
    ("retry shape", one_event("event: a.b\nretryPolicy: 3  # <-"),
     "functions.f.events[0].eventgateway.retryPolicy", "must be a mapping"),
    ("authorizer",
     service("f: {handler: h.main}",
             gateway="eventTypes:\n  user.created:\n    authorizer: nope  # <-"),
     'custom.eventgateway.eventTypes["user.created"].authorizer',
     "authorizer 'nope' is not a function of this service (functions: f)"),
    ("event authorizer", one_event("event: a.b\nauthorizer: ghost  # <-"),
     "functions.f.events[0].eventgateway.authorizer", "'ghost' is not a function"),
    ("two authorizers", service("a: {handler: h.a}\nb: {handler: h.b}",
                                custom="eventTypes: {t: {authorizer: a}}",
                                gateway="eventTypes:\n  t: {authorizer: b}  # <-"),
     'custom.eventgateway.eventTypes.t', "gets authorizer 'b' here but 'a' at line"),
    ("same id", service("a: {handler: h.a, name: x}\nb:  # <-\n  handler: h.b\n  name: x"),
     "functions.b", "function id 'x' is also the id of functions.a (line 11)"),
    ("same subscription",
     service("f:\n  handler: h.main\n  events:\n    - eventgateway: {event: a}\n"
             "    - eventgateway: {type: async, eventType: a}  # <-"),
     "functions.f.events[1]",
     "same subscription (async a POST /acme/) as functions.f.events[0] (line 14); remove one"),
    ("sync twice",
     service("a:\n  handler: h.a\n  events: [{eventgateway: {event: http, path: /u}}]\n"
             "b:\n  handler: h.b\n  events:\n"
             "    - eventgateway: {event: http, path: /u}  # <-"),
     "functions.b.events[0]", "served by one function only"),
    ("space", service("f: {handler: h.main}").replace("space: acme", "space: a/b  # <-"),
     "custom.eventgateway.space", "space 'a/b' is not valid"),
    ("url", service("f: {handler: h.main}", gateway="url: localhost:4000  # <-"),
     "custom.eventgateway.url", "is not an http:// or https:// URL"),
    ("variable", service("f: {handler: h.main}", gateway="url: http://${env:EG_HOST}:4000  # <-"),
     "custom.eventgateway.url", "${env:EG_HOST} (in 'http://${env:EG_HOST}:4000') has no value"),
    ("ssm", service("f: {handler: h.main}", provider="environment:\n  SECRET: ${ssm:/s}  # <-"),
     "provider.environment.SECRET", "'ssm' variable source is not supported by eg"),
    ("stage", service("f: {handler: h.main}", provider="stage: 'a b'  # <-"),
     "provider.stage", "stage 'a b' may hold only"),
    ("not a mapping", "- service\n", "(document)", "must be a mapping with service:"),
    ("functions list", "service: s\nfunctions:  # <-\n  - f\n", "functions",
     "must be a mapping of keys to values, got a list"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "key_path", "fragment"),
    [pytest.param(text, key, fragment, id=name) for name, text, key, fragment in ERRORS],
)
def test_errors_name_file_line_and_key(text: str, key_path: str, fragment: str):
    with pytest.raises(ConfigError) as caught:
        load(text)

    message = str(caught.value)
    assert message.startswith(f"serverless.yml:{marked_line(text)}: {key_path}: "), message
    assert fragment in message


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("service: s\nprovider:\n  runtime: [python3.11\n", 4, "invalid YAML"),
        ("service: s\nfunctions: {a: 1}\nservice: t\n", 3, "key 'service' appears twice"),
        ("a: b\n---\nc: d\n", 2, "invalid YAML"),
    ],
)
def test_yaml_problems_name_the_line(text: str, line: int, fragment: str):
    with pytest.raises(ConfigError) as caught:
        load(text)

    assert str(caught.value).startswith(f"serverless.yml:{line}: "), str(caught.value)
    assert fragment in str(caught.value)


def test_a_missing_file_says_where_and_what_to_do(in_service_dir: pathlib.Path):
    with pytest.raises(ConfigError) as caught:
        load_service(FILE)

    assert str(caught.value) == (
        f"no serverless.yml in {in_service_dir.resolve()}; "
        "run eg deploy in a service directory or pass --config"
    )


def test_a_missing_file_next_to_a_json_one_hints_at_it(in_service_dir: pathlib.Path):
    (in_service_dir / "serverless.json").write_text("{}", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"pass --config serverless\.json"):
        load_service(in_service_dir)


def test_an_empty_file_is_an_error():
    with pytest.raises(ConfigError, match=r"^serverless\.yml:1: \(document\): must be a mapping"):
        load("")

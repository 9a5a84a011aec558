"""``openapi.json``: the API's OpenAPI 3.1 document, generated from the routes of the three functions.

Each function's ``app.py`` is imported and its Powertools resolver asked for its document
(``get_openapi_json_schema``): the paths, path parameters, summaries, request bodies and answers come from the
route decorators (:mod:`sealgate.route_docs`). That needs pydantic, which the functions never import at cold
start, so this runs at generate time, in a child process (a cold start has module-level effects: metrics
namespace, cached clients) under moto with throwaway settings: nothing reaches an AWS account.

What the resolvers cannot know comes from ``template.yaml``: which routes need SigV4 (every ``Api`` event but
those with ``Authorizer: NONE``), and the server URL with its stage. A route the resolvers serve that the
template does not route (or the reverse) is refused: the document would not describe the API.

``make generate`` writes it (``python -m sealgate_local generate``; ``--check`` lists it when stale); the local
API serves it at ``GET /<stage>/openapi.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "openapi.json"
FUNCTIONS = ("encrypt", "sign", "forward")
TITLE = "Sealgate"
VERSION = "v1"
SIGV4 = "sigv4"
SECURITY_SCHEMES: dict[str, Any] = {
    SIGV4: {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "AWS Signature Version 4 for `execute-api` (IAM); the caller needs `execute-api:Invoke`",
        "x-amazon-apigateway-authtype": "awsSigv4",
    }
}
DESCRIPTION = (
    "Encrypts, signs and forwards requests for partner APIs the way each partner demands, and verifies their "
    "webhooks. Every route but the webhooks needs SigV4. Every refusal, from a function or from API Gateway, "
    'is `{"code": "<stable code>", "message": "<fixed text>"}`.'
)


class OpenApiError(ValueError):
    """The routes and the template disagree, or a function's resolver could not describe itself."""


# --- in the child process: the resolvers' own documents ------------------------------------------------------


def _child_environment() -> dict[str, str]:
    """Throwaway settings for the functions' cold start (moto intercepts every AWS call)."""
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "SYSTEMROOT", "TMPDIR") if name in os.environ}
    return {
        **keep,
        "PYTHONPATH": os.pathsep.join((str(ROOT / "layers" / "crypto"), str(ROOT / "local"))),
        "PYTHONHASHSEED": "0",
        "AWS_ACCESS_KEY_ID": "openapi-generator",
        "AWS_SECRET_ACCESS_KEY": "openapi-generator",  # nosec B105 - a dummy only moto sees
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SEALGATE_SECRET_PREFIX": "sealgate/openapi/",  # nosec B105 - a secret's name prefix, not a secret
        "POWERTOOLS_SERVICE_NAME": "sealgate",
        "POWERTOOLS_METRICS_NAMESPACE": "Sealgate",
    }


def resolver_documents(functions_dir: Path = ROOT / "functions") -> dict[str, dict[str, Any]]:
    """Each function's resolver document (run in this process: call it in a child, see :func:`generated`)."""
    import importlib.util

    from moto import mock_aws

    found: dict[str, dict[str, Any]] = {}
    with mock_aws():
        for name in FUNCTIONS:
            spec = importlib.util.spec_from_file_location(
                f"sealgate_openapi_{name}", functions_dir / name / "app.py"
            )
            if spec is None or spec.loader is None:
                raise OpenApiError(f"functions/{name}/app.py cannot be imported")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            found[name] = json.loads(module.app.get_openapi_json_schema(title=TITLE, version=VERSION))
    return found


# --- in this process: merged with what the template says -----------------------------------------------------


@functools.cache
def _documents_of_the_checkout() -> str:
    done = subprocess.run(  # this interpreter, this module, no shell
        [sys.executable, "-m", "sealgate_local.openapi", "--resolvers"],
        env=_child_environment(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise OpenApiError(f"the functions' resolvers could not describe themselves:\n{done.stderr[-2000:]}")
    return done.stdout


def _routes(template: Mapping[str, Any]) -> dict[tuple[str, str], tuple[str, bool]]:
    """(method, path) -> (function, public) for every ``Api`` event of the template."""
    from sealgate_local.api_server import routes_from_template

    resources = template.get("Resources") or {}
    names = {
        logical_id: Path(str((resource.get("Properties") or {}).get("CodeUri", logical_id))).name
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }
    return {
        (route.method.lower(), route.path): (route.function, route.public)
        for route in routes_from_template(template, names)
    }


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def merged(resolvers: Mapping[str, Mapping[str, Any]], template: Mapping[str, Any]) -> dict[str, Any]:
    """One document from the resolvers' (by function), with each operation's security from ``template``."""
    from sealgate.route_docs import COMPONENTS, PARAMETERS

    routed = _routes(template)
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = dict(COMPONENTS)
    for function, document in resolvers.items():
        schemas.update((document.get("components") or {}).get("schemas") or {})
        for path, operations in (document.get("paths") or {}).items():
            for method, operation in operations.items():
                where = f"{method.upper()} {path} (functions/{function}/app.py)"
                if (method, path) not in routed:
                    raise OpenApiError(f"{where} has no Api event in template.yaml")
                routed_to, public = routed[(method, path)]
                if routed_to != function:
                    raise OpenApiError(f"{where}: template.yaml routes it to the {routed_to} function")
                if method in paths.get(path, {}):
                    raise OpenApiError(f"{where} is served twice")
                described = PARAMETERS.get((method, path), {})
                for parameter in operation.get("parameters") or []:
                    if parameter.get("in") == "path" and parameter.get("name") in described:
                        parameter["description"] = described[parameter["name"]]
                operation["security"] = [] if public else [{SIGV4: []}]
                operation["x-sealgate-function"] = function
                paths.setdefault(path, {})[method] = operation
    served = {(method, path) for path, operations in paths.items() for method in operations}
    for method, path in sorted(set(routed) - served):
        raise OpenApiError(
            f"template.yaml routes {method.upper()} {path}, which no function's resolver serves"
        )
    used = {ref.rsplit("/", 1)[-1] for ref in _references(paths)}
    components: dict[str, Any] = {"securitySchemes": SECURITY_SCHEMES}
    if used:
        components["schemas"] = {name: schemas[name] for name in sorted(used)}
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "servers": [
            {
                "url": "https://{api_id}.execute-api.{region}.amazonaws.com/{stage}",
                "description": "deployed (the stack's ApiUrl output)",
                "variables": {
                    "api_id": {"default": "a1b2c3d4e5"},
                    "region": {"default": "us-east-1"},
                    "stage": {"default": "dev"},
                },
            },
            {
                "url": "http://127.0.0.1:{port}/dev",
                "description": "`make run` (the local API; it serves this document at /dev/openapi.json)",
                "variables": {"port": {"default": "8080"}},
            },
        ],
        "security": [{SIGV4: []}],
        "paths": {path: paths[path] for path in sorted(paths)},
        "components": components,
    }


def generated(template_path: Path | None = None) -> dict[str, Any]:
    """The document for this checkout's functions and ``template.yaml`` (or ``template_path``)."""
    from sealgate_local.aws_stack import TEMPLATE, load_template

    resolvers = json.loads(_documents_of_the_checkout())
    return merged(resolvers, load_template(template_path or TEMPLATE))


def text(document: Mapping[str, Any]) -> str:
    """The file's text: indented, keys in the generator's order, a final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sealgate_local.openapi", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--resolvers", action="store_true", help="print each function's resolver document")
    args = parser.parse_args(argv)
    if args.resolvers:
        print(json.dumps(resolver_documents()))
    else:
        print(text(generated()), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

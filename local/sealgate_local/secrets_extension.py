"""The AWS Parameters and Secrets Lambda Extension's protocol, served on 127.0.0.1 in front of moto.

Deployed, the functions fetch their partners' secrets from the extension (``GET /secretsmanager/get`` on the
port ``PARAMETERS_SECRETS_EXTENSION_HTTP_PORT``), not through boto3; locally this server answers the same
requests so that path runs for real in the local stack, the tests and ``make bench``:

- ``GET /secretsmanager/get?secretId=<name or ARN>`` with ``versionStage=<stage>`` or ``versionId=<id>``
  (either, or neither for ``AWSCURRENT``), and the header ``X-Aws-Parameters-Secrets-Token`` equal to the
  function's ``AWS_SESSION_TOKEN`` (anything else: 401, as the extension refuses callers outside the function);
- 200 with GetSecretValue's answer as JSON (``ARN``, ``Name``, ``VersionId``, ``SecretString`` or a base64
  ``SecretBinary``, ``VersionStages``, ``CreatedDate`` in epoch seconds);
- a Secrets Manager error: its HTTP status and ``{"__type": <error code>, "message": ...}`` (the code is what a
  caller classifies by: ``ResourceNotFoundException``...); moto unreachable: 502; any other path: 404.

Like the real extension with ``PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED=FALSE`` (what the template sets), it
keeps no cache: every request is one GetSecretValue. :attr:`requests` counts what it served (tests and the
bench check the functions came this way). It never logs a value.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from sealgate_local.lifecycle import Service

PATH = "/secretsmanager/get"
TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"  # noqa: S105 - a header name
#: the variables that point a function at this server (its port) and that its token must match
PORT_VARIABLE = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
TOKEN_VARIABLE = "AWS_SESSION_TOKEN"  # noqa: S105 - a variable name


class SecretsExtension(Service):
    """The extension's HTTP endpoint over a Secrets Manager client (moto's), on a free port of 127.0.0.1.

    ``client_factory`` gives the boto3 Secrets Manager client to answer with (called once, on the first
    request, under a lock: a boto3 client is thread-safe once made, making one is not). ``token`` is what callers must present (default: a
    fresh random one, to give the functions as their ``AWS_SESSION_TOKEN``).
    """

    def __init__(self, client_factory: Callable[[], Any], token: str | None = None) -> None:
        self.token = token or secrets.token_urlsafe(24)
        self._client_factory = client_factory
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests = 0
        self.refused = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the secrets extension is not running")
        return int(self._server.server_address[1])

    def environment(self) -> dict[str, str]:
        """What a function needs to fetch through this server: its port and the session token it checks."""
        return {PORT_VARIABLE: str(self.port), TOKEN_VARIABLE: self.token}

    def start(self) -> Self:
        extension = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                status, body = extension.answer(self.path, self.headers.get(TOKEN_HEADER))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return  # a request line names a secret: nothing of it is printed

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="secrets-extension", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def answer(self, target: str, token: str | None) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for a request line's target and the token it presented."""
        split = urlsplit(target)
        if split.path != PATH:
            return 404, {"__type": "NotFound", "message": "no such path"}
        if not token or not secrets.compare_digest(token.encode(), self.token.encode()):
            self.refused += 1
            return 401, {"__type": "UnauthorizedException", "message": "missing or wrong session token"}
        query = {name: values[-1] for name, values in parse_qs(split.query).items()}
        if not query.get("secretId"):
            return 400, {"__type": "ValidationException", "message": "secretId is required"}
        arguments = {"SecretId": query["secretId"]}
        if query.get("versionId"):
            arguments["VersionId"] = query["versionId"]
        if query.get("versionStage"):
            arguments["VersionStage"] = query["versionStage"]
        self.requests += 1
        return self._get_secret_value(arguments)

    def _get_secret_value(self, arguments: dict[str, str]) -> tuple[int, dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

        try:
            answer = self._secrets_manager().get_secret_value(**arguments)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "ClientError"))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
            return status, {"__type": code, "message": f"GetSecretValue failed: {code}"}
        except ParamValidationError:
            return 400, {"__type": "ValidationException", "message": "invalid parameters"}
        except BotoCoreError as error:
            return 502, {"__type": type(error).__name__, "message": "Secrets Manager could not be reached"}
        body: dict[str, Any] = {
            name: answer[name] for name in ("ARN", "Name", "VersionId", "VersionStages") if name in answer
        }
        if "SecretString" in answer:
            body["SecretString"] = answer["SecretString"]
        if "SecretBinary" in answer:
            body["SecretBinary"] = base64.b64encode(answer["SecretBinary"]).decode("ascii")
        created = answer.get("CreatedDate")
        if isinstance(created, datetime):
            body["CreatedDate"] = created.timestamp()
        return 200, body

    def _secrets_manager(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

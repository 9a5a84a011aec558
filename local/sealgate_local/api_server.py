"""API Gateway, locally: the routes of ``template.yaml`` served over HTTP on 127.0.0.1 (a free port).

Routes are read from each function's ``Events`` of ``Type: Api`` (``Path`` with ``{var}`` parts, ``Method``,
``Auth``), never restated here. Each HTTP request becomes a REST API proxy event, as API Gateway sends it::

    resource, path, httpMethod, headers, multiValueHeaders, queryStringParameters,
    multiValueQueryStringParameters, pathParameters, stageVariables, body, isBase64Encoded,
    requestContext: {resourcePath, httpMethod, path (with the stage), stage, requestId, requestTimeEpoch,
                     identity: {sourceIp, userAgent, and on IAM routes userArn, caller, user, accountId}}

and the function's answer (``statusCode``, ``headers``, ``multiValueHeaders``, ``body``, ``isBase64Encoded``)
goes back to the client. The base URL carries the stage like the deployed ``ApiUrl``:
``http://127.0.0.1:<port>/<stage>/``.

IAM (SigV4) is stood in for: an IAM route's caller is marked as :data:`LOCAL_CALLER` (no signature is asked
for, so plain ``curl`` works); a public route (``Auth: {Authorizer: NONE}``, the partners' webhooks) gets no
caller at all. A path no route matches is ``404 {"code": "not_found"}``; a function that raised is ``502``
and one that timed out ``504``, as API Gateway answers.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sealgate_local.lifecycle import Service
from sealgate_local.worker import Invocation, WorkerFailed

LOCAL_USER = "local-developer"
LOCAL_ACCESS_KEY = "AKIALOCALDEVELOPER00"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit

Invoke = Callable[[str, Mapping[str, Any], str], Invocation]  # (function, event, request id) -> invocation


@dataclass(frozen=True)
class Route:
    """One API event of one function: ``POST /v1/encrypt/{partner}`` -> ``encrypt``."""

    function: str
    method: str
    path: str
    public: bool

    @property
    def pattern(self) -> re.Pattern[str]:
        parts = []
        for part in self.path.strip("/").split("/"):
            variable = re.fullmatch(r"\{([A-Za-z0-9_]+)(\+?)\}", part)
            if variable is None:
                parts.append(re.escape(part))
            else:
                parts.append(f"(?P<{variable[1]}>{'.+' if variable[2] else '[^/]+'})")
        return re.compile("/" + "/".join(parts))

    def fill(self, *values: str) -> str:
        """The path with its variables replaced by ``values`` in order; offered more values than it has
        variables, it takes the last ones (``fill(partner, id)`` suits ``/v1/forward/{id}`` and
        ``/v1/forward/{partner}/{id}`` alike)."""
        parts = self.path.split("/")
        variables = sum(1 for part in parts if part.startswith("{"))
        if variables > len(values):
            raise ValueError(f"{self.path} needs {variables} values")
        remaining = iter(values[len(values) - variables :])
        return "/".join(next(remaining) if part.startswith("{") else part for part in parts)

    @property
    def specificity(self) -> tuple[int, int]:
        """API Gateway prefers literal path parts over variables, and a method over ``ANY``."""
        literal = sum(1 for part in self.path.split("/") if part and not part.startswith("{"))
        return literal, int(self.method != "ANY")


def routes_from_template(template: Mapping[str, Any], function_names: Mapping[str, str]) -> list[Route]:
    """The ``Api`` events of every function; ``function_names`` maps logical ids to the names used to invoke."""
    resources = template.get("Resources") or {}
    global_auth = ((template.get("Globals") or {}).get("Api") or {}).get("Auth") or {}
    routes: list[Route] = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") != "Api":
                continue
            properties = event.get("Properties") or {}
            api_auth = global_auth
            api = properties.get("RestApiId")
            if isinstance(api, dict) and "Ref" in api:
                api_auth = ((resources.get(api["Ref"]) or {}).get("Properties") or {}).get("Auth") or api_auth
            authorizer = (properties.get("Auth") or {}).get("Authorizer", api_auth.get("DefaultAuthorizer"))
            routes.append(
                Route(
                    function=function_names[logical_id],
                    method=str(properties["Method"]).upper(),
                    path=str(properties["Path"]),
                    public=authorizer in (None, "NONE"),
                )
            )
    return sorted(routes, key=lambda r: r.specificity, reverse=True)


class ApiServer(Service):
    """The local API on ``http://127.0.0.1:<port>/<stage>/``; ``start()`` / ``stop()`` or a context manager."""

    def __init__(self, routes: list[Route], invoke: Invoke, *, stage: str, account_id: str) -> None:
        self.routes = routes
        self.stage = stage
        self.account_id = account_id
        self._invoke = invoke
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/<stage>`` (no trailing slash: append ``/v1/...``)."""
        if self._server is None:
            raise RuntimeError("the local API is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self.stage}"

    @property
    def caller_arn(self) -> str:
        """The IAM principal an IAM route's caller is marked as."""
        return f"arn:aws:iam::{self.account_id}:user/{LOCAL_USER}"

    def start(self) -> ApiServer:
        owner = self

        class Handler(_Handler):
            api = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
        self._server = self._thread = None

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for ``method path`` (a path without the stage) and its path parameters."""
        for route in self.routes:
            if route.method not in (method, "ANY"):
                continue
            found = route.pattern.fullmatch(path)
            if found is not None:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def event(
        self,
        route: Route,
        parameters: Mapping[str, str],
        *,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        request_id: str,
    ) -> dict[str, Any]:
        """The REST API proxy event API Gateway would send for this request."""
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            multi_headers.setdefault(name, []).append(value)
        multi_query = parse_qs(query, keep_blank_values=True) if query else {}
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
        now = datetime.now(UTC)
        user_agent = next((v for k, v in headers if k.lower() == "user-agent"), None)
        identity: dict[str, Any] = {
            "cognitoIdentityPoolId": None,
            "accountId": None,
            "cognitoIdentityId": None,
            "caller": None,
            "sourceIp": source_ip,
            "principalOrgId": None,
            "accessKey": None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": None,
            "userAgent": user_agent,
            "user": None,
        }
        if not route.public:
            identity.update(
                accountId=self.account_id,
                caller=LOCAL_USER,
                user=LOCAL_USER,
                accessKey=LOCAL_ACCESS_KEY,
                userArn=self.caller_arn,
            )
        return {
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": dict(parameters) or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": "local",
                "resourcePath": route.path,
                "httpMethod": method,
                "extendedRequestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{self.stage}{path}",
                "accountId": self.account_id,
                "protocol": "HTTP/1.1",
                "stage": self.stage,
                "domainPrefix": "local",
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": request_id,
                "identity": identity,
                "domainName": "127.0.0.1",
                "apiId": "local",
            },
            "body": text if body else None,
            "isBase64Encoded": encoded,
        }

    def handle(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer one HTTP request: (status, headers, body)."""
        request_id = str(uuid.uuid4())
        base = [("x-amzn-RequestId", request_id)]
        url = urlsplit(target)
        prefix = f"/{self.stage}"
        path = url.path[len(prefix) :] if url.path.startswith(prefix + "/") else None
        found = None if path is None else self.match(method, path)
        if found is None or path is None:
            return _json(404, {"code": "not_found", "message": "no such route"}, base)
        route, parameters = found
        event = self.event(
            route,
            parameters,
            method=method,
            path=path,
            query=url.query,
            headers=headers,
            body=body,
            source_ip=source_ip,
            request_id=request_id,
        )
        try:
            invocation = self._invoke(route.function, event, request_id)
        except WorkerFailed:  # the function could not start (its init raised): Lambda's 502 as well
            return _json(502, {"message": "Internal server error"}, base)
        if invocation.timed_out:
            return _json(504, {"message": "Endpoint request timed out"}, base)
        answer = invocation.result
        if not invocation.ok or not isinstance(answer, dict) or "statusCode" not in answer:
            return _json(502, {"message": "Internal server error"}, base)
        out = list(base)
        for name, value in (answer.get("headers") or {}).items():
            out.append((str(name), str(value)))
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            if name not in (answer.get("headers") or {}):
                out.extend((str(name), str(v)) for v in values)
        raw = answer.get("body") or ""
        payload = base64.b64decode(raw) if answer.get("isBase64Encoded") else str(raw).encode("utf-8")
        return int(answer["statusCode"]), out, payload


def _json(
    status: int, body: Mapping[str, Any], headers: list[tuple[str, str]]
) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [*headers, ("Content-Type", "application/json")], json.dumps(body).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: ApiServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the functions' own logs say what happened."""

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0:
            status, headers, body = _json(400, {"message": "Bad Content-Length"}, [])
            self.close_connection = True
        elif length > MAX_BODY_BYTES:
            status, headers, body = _json(413, {"message": "Request Too Long"}, [])
            self.close_connection = True
        else:
            data = self.rfile.read(length) if length > 0 else b""
            status, headers, body = self.api.handle(
                self.command, self.path, list(self.headers.items()), data, self.client_address[0]
            )
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

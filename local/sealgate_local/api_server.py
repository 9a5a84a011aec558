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

IAM (SigV4): with ``iam_auth=True`` every route but the public ones (``Auth: {Authorizer: NONE}``, the partners'
webhooks) needs a request signed with :attr:`ApiServer.credentials`, checked as API Gateway checks it
(:mod:`sealgate_local.sigv4`): an unsigned request is answered ``MISSING_AUTHENTICATION_TOKEN`` (403), a badly
signed one ``INVALID_SIGNATURE`` (403), with ``x-amzn-ErrorType`` naming the kind of failure, and the function
is not invoked. The identity of a verified request is its access key's (``accessKey``, ``caller``, ``user``,
``userArn``, ``accountId``). With ``iam_auth=False`` (the default) no signature is asked for, so plain
``curl`` works, and an IAM route's caller is marked as that same identity. A public route gets no caller at all.
The OpenAPI document (a local convenience, not a route of the deployed API) is served without a signature.

What API Gateway answers itself is answered from the API's ``GatewayResponses`` in the template (read by
:func:`gateway_responses_from_template`, never restated here), so a client sees the same
``{"code", "message"}`` locally and deployed: a path no route matches is ``RESOURCE_NOT_FOUND`` (404;
deployed, API Gateway answers an unknown path of an IAM-authorized API with ``MISSING_AUTHENTICATION_TOKEN``,
403), a body over 10 MiB ``REQUEST_TOO_LARGE`` (413), a function that timed out ``INTEGRATION_TIMEOUT`` (504),
one that raised or gave a malformed answer ``DEFAULT_5XX`` (502), an unreadable ``Content-Length``
``DEFAULT_4XX`` (400).

Connections are kept alive (HTTP/1.1) with ``TCP_NODELAY``, and the listen backlog is :data:`LISTEN_BACKLOG`,
so that timings measured through the local API are the functions' own.

``GET /<stage>/openapi.json`` answers the API's OpenAPI document (the committed ``openapi.json``, see
:mod:`sealgate_local.openapi`), without SigV4. What the HTTP server refuses before any route is looked up (a
malformed request line, a header block too long, a method no route has) is answered in the same contract.
"""

from __future__ import annotations

import base64
import functools
import re
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from sealgate_local import sigv4
from sealgate_local.aws_stack import load_template
from sealgate_local.lifecycle import Service
from sealgate_local.openapi import OPENAPI
from sealgate_local.sigv4 import LocalCredentials
from sealgate_local.worker import Invocation, WorkerFailed

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
#: socketserver's default (5) drops the SYN of a sixth connection arriving while the accepting thread is busy,
#: and the client resends it only after a second: a burst of parallel clients would measure that second.
LISTEN_BACKLOG = 128

# The gateway responses the local API answers with itself, and the status each has when it sets none.
NO_ROUTE = "RESOURCE_NOT_FOUND"
TOO_LARGE = "REQUEST_TOO_LARGE"
TIMED_OUT = "INTEGRATION_TIMEOUT"
BAD_REQUEST = "DEFAULT_4XX"
FUNCTION_FAILED = "DEFAULT_5XX"
OWN_ANSWERS: Final = {
    NO_ROUTE: 404,
    TOO_LARGE: 413,
    TIMED_OUT: 504,
    BAD_REQUEST: 400,
    FUNCTION_FAILED: 502,
    sigv4.MISSING: 403,
    sigv4.INVALID: 403,
}

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


@dataclass(frozen=True)
class GatewayResponse:
    """One of API Gateway's own answers, as one entry of an API's ``GatewayResponses`` configures it."""

    status: int | None  # None: the status of the refusal it answers (DEFAULT_4XX, DEFAULT_5XX)
    headers: tuple[tuple[str, str], ...]
    body: bytes


def gateway_responses_from_template(template: Mapping[str, Any]) -> dict[str, GatewayResponse]:
    """The ``GatewayResponses`` of the template's ``AWS::Serverless::Api`` by response type.

    Only static header values (``"'no-store'"``, quoted as API Gateway wants them) and the
    ``application/json`` template are read; a header mapped from the request is refused, since it would echo
    the request back.
    """
    found: dict[str, GatewayResponse] = {}
    for resource in (template.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::Serverless::Api":
            continue
        configured = (resource.get("Properties") or {}).get("GatewayResponses") or {}
        for kind, entry in configured.items():
            headers = []
            for name, value in ((entry.get("ResponseParameters") or {}).get("Headers") or {}).items():
                text = str(value)
                if len(text) < 2 or not (text.startswith("'") and text.endswith("'")):
                    raise ValueError(f"gateway response {kind}: header {name} is not a static value")
                headers.append((str(name), text[1:-1]))
            body = (entry.get("ResponseTemplates") or {}).get("application/json")
            if not isinstance(body, str):
                raise ValueError(f"gateway response {kind} has no application/json template")
            headers.append(("Content-Type", "application/json"))
            status = entry.get("StatusCode")
            found[str(kind)] = GatewayResponse(
                status=None if status is None else int(status), headers=tuple(headers), body=body.encode()
            )
    return found


#: where the local API serves the API's OpenAPI document (``make generate`` writes it; deployed, it is the
#: committed ``openapi.json``: API Gateway itself serves no such path)
OPENAPI_PATH = "/openapi.json"


@functools.cache
def _project_gateway_responses() -> dict[str, GatewayResponse]:
    return gateway_responses_from_template(load_template())


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


class HttpServer(ThreadingHTTPServer):
    """The HTTP server under the local API: one thread per connection, :data:`LISTEN_BACKLOG`, and
    ``TCP_NODELAY`` on every accepted connection."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        # An answer leaves in two writes (headers, then body). With Nagle's algorithm the body waits for the
        # ACK of the headers, which the client delays by ~40 ms: 40 ms more on every keep-alive request.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


class ApiServer(Service):
    """The local API on ``http://127.0.0.1:<port>/<stage>/``; ``start()`` / ``stop()`` or a context manager.

    ``gateway_responses`` are API Gateway's own answers (:func:`gateway_responses_from_template`), by default
    those of the project's ``template.yaml``.
    """

    def __init__(
        self,
        routes: list[Route],
        invoke: Invoke,
        *,
        stage: str,
        account_id: str,
        gateway_responses: Mapping[str, GatewayResponse] | None = None,
        region: str = "us-east-1",
        iam_auth: bool = False,
        credentials: LocalCredentials | None = None,
        on_auth_refusal: Callable[[str], None] | None = None,
    ) -> None:
        """``credentials`` sign IAM routes' requests (fresh throwaway ones if None); ``iam_auth`` turns the
        SigV4 check on; ``on_auth_refusal`` sees a fixed line per refused signature (for ``make run``'s
        console: why, never a value of the request)."""
        self.routes = routes
        self.stage = stage
        self.account_id = account_id
        self.region = region
        self.iam_auth = iam_auth
        self.credentials = credentials or LocalCredentials.generate()
        self._verifier = sigv4.Verifier([self.credentials], region)
        self._on_auth_refusal = on_auth_refusal
        self.gateway_responses = (
            _project_gateway_responses() if gateway_responses is None else gateway_responses
        )
        for kind in OWN_ANSWERS:
            self.refusal(kind)  # a missing one is refused now, not on the first request that needs it
        self._invoke = invoke
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/<stage>`` (no trailing slash: append ``/v1/...``)."""
        if self._server is None:
            raise RuntimeError("the local API is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self.stage}"

    @property
    def caller_arn(self) -> str:
        """The IAM principal of :attr:`credentials`: an IAM route's caller."""
        return self.credentials.user_arn(self.account_id)

    def start(self) -> ApiServer:
        owner = self

        class Handler(_Handler):
            api = owner

        self._server = HttpServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
        self._server = self._thread = None

    def refusal(
        self, kind: str, headers: list[tuple[str, str]] | None = None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """API Gateway's own answer ``kind`` (one of :data:`OWN_ANSWERS`): the gateway response configured for
        it, else ``DEFAULT_4XX`` or ``DEFAULT_5XX`` by its status, as API Gateway falls back."""
        status = OWN_ANSWERS[kind]
        fallback = FUNCTION_FAILED if status >= 500 else BAD_REQUEST
        response = self.gateway_responses.get(kind) or self.gateway_responses.get(fallback)
        if response is None:
            raise ValueError(f"the API configures no gateway response for {kind} or {fallback}")
        return response.status or status, [*(headers or []), *response.headers], response.body

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
        caller: LocalCredentials | None = None,
    ) -> dict[str, Any]:
        """The REST API proxy event API Gateway would send for this request; ``caller``: the credentials that
        signed it (None: :attr:`credentials` on an IAM route, as no signature was checked)."""
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
            signer = caller or self.credentials
            identity.update(
                accountId=self.account_id,
                caller=signer.user_id,
                user=signer.user_id,
                accessKey=signer.access_key,
                userArn=signer.user_arn(self.account_id),
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
        if path == OPENAPI_PATH and method in ("GET", "HEAD") and OPENAPI.is_file():
            headers = [*base, ("Content-Type", "application/json"), ("Cache-Control", "no-store")]
            return 200, headers, OPENAPI.read_bytes()
        found = None if path is None else self.match(method, path)
        if found is None or path is None:
            return self.refusal(NO_ROUTE, base)
        route, parameters = found
        caller: LocalCredentials | None = None
        if self.iam_auth and not route.public:
            verified = self._verifier.verify(method, target, headers, body)
            if isinstance(verified, sigv4.Refusal):
                if self._on_auth_refusal is not None:
                    self._on_auth_refusal(f"{method} {route.path}: {verified.kind} ({verified.reason})")
                return self.refusal(verified.kind, [*base, ("x-amzn-ErrorType", verified.error_type)])
            caller = verified
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
            caller=caller,
        )
        try:
            invocation = self._invoke(route.function, event, request_id)
        except WorkerFailed:  # the function could not start (its init raised): Lambda's 502 as well
            return self.refusal(FUNCTION_FAILED, base)
        return self._answer(invocation, base)

    def _answer(
        self, invocation: Invocation, base: list[tuple[str, str]]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The function's answer as the client gets it, or API Gateway's own if it gave none."""
        if invocation.timed_out:
            return self.refusal(TIMED_OUT, base)
        answer = invocation.result
        if not invocation.ok or not isinstance(answer, dict) or "statusCode" not in answer:
            return self.refusal(FUNCTION_FAILED, base)
        out = list(base)
        for name, value in (answer.get("headers") or {}).items():
            out.append((str(name), str(value)))
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            if name not in (answer.get("headers") or {}):
                out.extend((str(name), str(v)) for v in values)
        raw = answer.get("body") or ""
        payload = base64.b64decode(raw) if answer.get("isBase64Encoded") else str(raw).encode("utf-8")
        return int(answer["statusCode"]), out, payload


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
            status, headers, body = self.api.refusal(BAD_REQUEST)
            self.close_connection = True
        elif length > MAX_BODY_BYTES:
            status, headers, body = self.api.refusal(TOO_LARGE)
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

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What ``http.server`` refuses before any route is looked up (a malformed request line or header, a
        line or header block too long, a method no ``do_*`` serves) in the error contract, as API Gateway
        answers it: a method it has no route for is ``RESOURCE_NOT_FOUND``; the rest ``DEFAULT_4XX``, with
        http.server's own 4xx status (414, 431) where it has one. Never its HTML page, never a 5xx."""
        if code == HTTPStatus.NOT_IMPLEMENTED:
            status, headers, body = self.refusal_of(NO_ROUTE)
        else:
            status, headers, body = self.refusal_of(BAD_REQUEST)
            status = code if 400 <= code < 500 else status
        self.close_connection = True
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body)

    def refusal_of(self, kind: str) -> tuple[int, list[tuple[str, str]], bytes]:
        return self.api.refusal(kind, [("x-amzn-RequestId", str(uuid.uuid4()))])

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

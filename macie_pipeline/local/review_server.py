"""The approval API on 127.0.0.1: HTTP requests become API Gateway REST proxy events for the review handler.

Only the routes and methods the synthesized ``AWS::ApiGateway::*`` resources declare are served
(anything else gets API Gateway's own 403 ``Missing Authentication Token``), under the stage name
of the template, so the links in the notifications have the deployed shape:
``http://127.0.0.1:<port>/<stage>/reviews/<reviewId>``. The query string reaches the function as
API Gateway passes it (``?page=2`` of a batch review's pager): decoded, the last value of a name in
``queryStringParameters`` and every value in ``multiValueQueryStringParameters``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl, unquote

from .template import ACCOUNT, FUNCTION, StackTemplate

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
_JSON = {"Content-Type": "application/json"}

#: Runs the function with this logical id on a proxy event: ``(result, error, logs)`` as
#: :meth:`~macie_pipeline.local.functions.LocalFunction.invoke` returns them.
Invoke = Callable[[str, dict], tuple[Any, Optional[dict], str]]

#: What the server answers: status, headers, body.
Response = tuple[int, dict[str, str], bytes]


class ReviewServer:
    """The stack's review API on a local port; requests run the review function through ``invoke``."""

    def __init__(self, stack: StackTemplate, invoke: Invoke, host: str = "127.0.0.1", port: int = 0) -> None:
        self._invoke = invoke
        self.stage, self.routes = _routes(stack)
        self._server = ThreadingHTTPServer((host, port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-review-api", daemon=True)
        self.requests: list[tuple[str, str, int]] = []
        #: The local stand-in for the reviewers' managed login (``/oauth2/...``), set by the deployment.
        self.sign_in: Optional[Callable[[str, str, str, bytes], Optional[Response]]] = None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``: where the local sign-in pages are (``/oauth2/authorize``, ``/oauth2/token``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/{self.stage}/"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def route(self, method: str, path: str) -> Optional[tuple[str, dict[str, str], str]]:
        """(resource template, path parameters, function name) for a request path under the stage."""
        for resource, pattern, methods in self.routes:
            match = pattern.fullmatch(path)
            if match and (method in methods or "ANY" in methods):
                return resource, match.groupdict(), methods.get(method) or methods["ANY"]
        return None

    def proxy_event(self, method: str, resource: str, path: str, params: dict, headers: dict, body: bytes, query: str) -> dict:
        text_body: Optional[str]
        is_base64 = False
        try:
            text_body = body.decode("utf-8") if body else None
        except UnicodeDecodeError:
            text_body, is_base64 = base64.b64encode(body).decode(), True
        pairs = parse_qsl(query, keep_blank_values=True)
        multi: dict[str, list[str]] = {}
        for name, value in pairs:
            multi.setdefault(name, []).append(value)
        return {
            "resource": resource,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {name: values[-1] for name, values in multi.items()} or None,
            "multiValueQueryStringParameters": multi or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": resource,
                "httpMethod": method,
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "accountId": ACCOUNT,
                "apiId": "local",
                "requestId": str(uuid.uuid4()),
                "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "")},
            },
            "body": text_body,
            "isBase64Encoded": is_base64,
        }

    def respond(self, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes) -> Response:
        """Serve one request as API Gateway would: 403 off the declared routes, 502 when the function fails."""
        prefix = f"/{self.stage}"
        if raw_path.startswith("/oauth2/") and self.sign_in is not None:
            answer = self.sign_in(method, raw_path, query, body)
            if answer is not None:
                return self._record(method, raw_path, answer)
        path = raw_path[len(prefix):] if raw_path.startswith(prefix + "/") else None
        routed = self.route(method, path) if path is not None else None
        if path is None or routed is None:
            return self._record(method, raw_path, (403, dict(_JSON), b'{"message":"Missing Authentication Token"}'))
        resource, params, logical = routed
        params = {k: unquote(v) for k, v in params.items()}
        event = self.proxy_event(method, resource, path, params, headers, body, query)
        result, error, _ = self._invoke(logical, event)
        if error is not None or not isinstance(result, dict):
            return self._record(method, raw_path, (502, dict(_JSON), b'{"message": "Internal server error"}'))
        return self._record(method, raw_path, _proxy_response(result))

    def _record(self, method: str, raw_path: str, response: Response) -> Response:
        self.requests.append((method, raw_path, response[0]))
        return response


def _proxy_response(result: dict) -> Response:
    """The HTTP response for a Lambda proxy integration's result."""
    status = int(result.get("statusCode", 200))
    headers: dict = dict(result.get("headers") or {})
    for name, values in (result.get("multiValueHeaders") or {}).items():
        # Set-Cookie cannot be folded into one line: each value is its own header, as API Gateway sends them.
        headers[name] = list(values) if name.lower() == "set-cookie" else ", ".join(values)
    payload = result.get("body") or ""
    data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
    return status, headers, data


def _routes(stack: StackTemplate) -> tuple[str, list[tuple[str, re.Pattern, dict[str, str]]]]:
    resources = stack.of_type("AWS::ApiGateway::Resource")
    stages = [(r.get("Properties") or {}).get("StageName") for r in stack.of_type("AWS::ApiGateway::Stage").values()]
    stage = next((s for s in stages if isinstance(s, str)), "prod")

    def path_of(logical: str) -> str:
        props = resources[logical].get("Properties") or {}
        parent = props.get("ParentId") or {}
        prefix = path_of(parent["Ref"]) if isinstance(parent, dict) and parent.get("Ref") in resources else ""
        return f"{prefix}/{props.get('PathPart')}"

    routes: dict[str, dict[str, str]] = {}
    for method in stack.of_type("AWS::ApiGateway::Method").values():
        props = method.get("Properties") or {}
        target = props.get("ResourceId") or {}
        resource = path_of(target["Ref"]) if isinstance(target, dict) and target.get("Ref") in resources else "/"
        uri = json.dumps((props.get("Integration") or {}).get("Uri"))
        function = next((logical for logical in stack.of_type(FUNCTION) if logical in uri), None)
        if function:
            routes.setdefault(resource, {})[str(props.get("HttpMethod"))] = function
    compiled = []
    for resource, methods in routes.items():
        pattern = re.compile("".join(
            f"/(?P<{part[1:-1].rstrip('+')}>[^/]+)" if part.startswith("{") else "/" + re.escape(part)
            for part in resource.strip("/").split("/") if part
        ) or "/")
        compiled.append((resource, pattern, methods))
    return stage, compiled


class _Handler(BaseHTTPRequestHandler):
    """HTTP in and out; what to answer is :meth:`ReviewServer.respond`'s business."""

    protocol_version = "HTTP/1.1"
    review_server: ReviewServer  # set by _handler_class

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
        pass

    def _serve(self, method: str) -> None:
        raw_path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            return self._send(413, dict(_JSON), b'{"message":"Request Too Long"}')
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        self._send(*self.review_server.respond(method, raw_path, query, headers, body))

    def _send(self, status: int, headers: dict, data: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                for one in value if isinstance(value, list) else [value]:
                    self.send_header(name, one)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")


def _handler_class(server: ReviewServer) -> type:
    """A request handler class bound to ``server`` (http.server instantiates it per request)."""
    return type("Handler", (_Handler,), {"review_server": server})

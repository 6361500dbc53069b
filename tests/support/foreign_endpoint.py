"""An HTTP endpoint that is not CloudWatch Logs: it answers every request with one fixed page.

What a wrong endpoint URL reaches (a web server's HTML error page, another AWS service's XML error, a
proxy's plain text). A real server on 127.0.0.1, so botocore parses the real answer.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: name -> (HTTP status, content type, body)
PAGES: dict[str, tuple[int, str, str]] = {
    "html": (
        404,
        "text/html",
        "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n<body><h1>Not Found</h1>"
        "<p>The requested URL was not found on this server.</p></body></html>",
    ),
    "xml-unknown-key": (
        403,
        "application/xml",
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access '
        "Key Id you provided does not exist in our records.</Message><RequestId>R1</RequestId></Error>",
    ),
    "xml-bad-signature": (
        403,
        "text/xml",
        '<?xml version="1.0"?>\n<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>'
        "<Message>The request signature we calculated does not match the signature you provided.</Message>"
        "</Error></ErrorResponse>",
    ),
    "xml-other": (
        404,
        "application/xml",
        '<?xml version="1.0"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not '
        "exist</Message></Error>",
    ),
}


class ForeignEndpoint:
    """``with ForeignEndpoint("html") as url:`` — every request to ``url`` gets ``PAGES["html"]``."""

    def __init__(self, page: str) -> None:
        status, content_type, body = PAGES[page]
        data = body.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

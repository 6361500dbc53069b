"""A WSGI web service with several pre-forked gunicorn workers, each shipping its own records.

Run it (gunicorn is POSIX-only; `pip install gunicorn`), against a local endpoint (see README.md):

    LOGURU_CLOUDWATCH_ENDPOINT_URL=http://127.0.0.1:5000 python examples/web_service.py --workers 3
    curl -H 'X-Request-Id: r-1' http://127.0.0.1:8000/orders/42

or with gunicorn's own command line: `cd examples && gunicorn --workers 3 web_service:app`.
Stop it with Ctrl-C or SIGTERM: every worker delivers what it still holds as it exits.
"""

import argparse
import json
import os
import uuid

from loguru import logger

from loguru_cloudwatch import CloudWatchSink

# Configured once, at import. gunicorn forks its workers from the process that imported this module
# (or imports it in each worker): either way each worker gets a sink of its own. After a fork the sink
# starts afresh in the child, with its own background thread, an empty queue and its own stream
# "{hostname}/{pid}", so every worker writes to a separate stream and no record is sent twice.
logger.add(
    CloudWatchSink(
        "examples/web-service",
        "{hostname}/{pid}",
        endpoint_url=os.environ.get("LOGURU_CLOUDWATCH_ENDPOINT_URL"),
    ),
    level="INFO",
)


def app(environ, start_response):
    """A tiny WSGI application: one record per request, carrying the request's id and path."""
    request_id = environ.get("HTTP_X_REQUEST_ID") or uuid.uuid4().hex
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
    # Every record logged while handling the request carries request_id, even from deeper calls.
    with logger.contextualize(request_id=request_id):
        logger.info("{} {}", method, path)
        body = json.dumps({"request_id": request_id, "worker_pid": os.getpid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def serve(bind: str, workers: int) -> None:
    """Run `app` under gunicorn from Python (the same as `gunicorn --bind ... --workers ... web_service:app`)."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("graceful_timeout", 10)  # how long stopping workers may take (delivery included)
            if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25.1: no runtime control socket
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return app

    Server().run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1:8000", help="address to listen on (default %(default)s)")
    parser.add_argument("--workers", type=int, default=3, help="worker processes (default %(default)s)")
    args = parser.parse_args()
    serve(args.bind, args.workers)

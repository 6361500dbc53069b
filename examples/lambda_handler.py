"""An AWS Lambda handler that ships structured records to CloudWatch Logs with loguru-cloudwatch.

Deploy it with the handler `lambda_handler.handler`. Try it locally against a local endpoint (see
README.md); the `__main__` block below simulates a few invocations:

    LOGURU_CLOUDWATCH_ENDPOINT_URL=http://127.0.0.1:5000 python examples/lambda_handler.py

Lambda freezes the execution environment as soon as the handler returns: the sink's background thread does
not run while frozen, and a frozen environment may be discarded without the interpreter ever exiting (no
atexit, no final delivery). So the handler delivers its records with `sink.force_flush()` before returning.
"""

import os

from loguru import logger

from loguru_cloudwatch import CloudWatchSink

# Module level: runs once per execution environment (at a cold start) and is reused by warm invocations.
sink = CloudWatchSink(
    "examples/lambda-handler",
    # Lambda names a log stream per execution environment: reuse that name (elsewhere: "{hostname}/{pid}").
    os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "{hostname}/{pid}"),
    endpoint_url=os.environ.get("LOGURU_CLOUDWATCH_ENDPOINT_URL"),
)
# Lambda already copies stdout/stderr to /aws/lambda/<function>: keep only the structured JSON records,
# in their own group.
logger.remove()
logger.add(sink, level="INFO")


def handler(event, context):
    # Every record of this invocation carries the request id (a top-level field in CloudWatch).
    with logger.contextualize(aws_request_id=context.aws_request_id):
        try:
            items = event["items"]
            logger.info("order received with {} items", len(items))
            total = sum(item["price"] * item["quantity"] for item in items)
            logger.bind(total=total).info("order accepted")
            return {"statusCode": 200, "total": total}
        except (KeyError, TypeError):
            logger.exception("invalid order")
            return {"statusCode": 400}
        finally:
            # Deliver before returning, leaving a margin of the invocation's remaining time.
            remaining = context.get_remaining_time_in_millis() / 1000
            sink.force_flush(timeout=max(0.1, min(5.0, remaining - 0.5)))


if __name__ == "__main__":
    import time
    import uuid

    class FakeContext:
        """The part of Lambda's context object this handler uses."""

        def __init__(self, timeout: float = 30.0) -> None:
            self.aws_request_id = str(uuid.uuid4())
            self._deadline = time.monotonic() + timeout

        def get_remaining_time_in_millis(self) -> int:
            return int((self._deadline - time.monotonic()) * 1000)

    events = [
        {"items": [{"price": 3, "quantity": 2}, {"price": 10, "quantity": 1}]},
        {"items": [{"price": 5, "quantity": 4}]},
        {"items": [{"price": 5}]},  # no quantity: logged with its traceback, answered 400
    ]
    for event in events:
        context = FakeContext()
        print(context.aws_request_id, handler(event, context))
    stats = sink.stats
    print(f"sent={stats.sent} queued={stats.queued} batches={stats.batches}")

"""A plain script that ships its loguru records to CloudWatch Logs.

Run it against AWS with your usual credentials and region, or against a local endpoint (see README.md):

    LOGURU_CLOUDWATCH_ENDPOINT_URL=http://127.0.0.1:5000 python examples/basic_script.py
"""

import os

from loguru import logger

from loguru_cloudwatch import CloudWatchSink

# One sink per process. The stream defaults to "{hostname}/{pid}"; here it is named by the script.
# endpoint_url=None (the variable unset) means the real CloudWatch Logs endpoint of your region.
sink = CloudWatchSink(
    "examples/basic-script",
    "{program}",
    endpoint_url=os.environ.get("LOGURU_CLOUDWATCH_ENDPOINT_URL"),
    retention_days=7,  # applied only if the sink creates the group
)
# Keep loguru's default stderr handler, and ship INFO and above. The sink queues records and sends them
# in batches from a background thread: logging never waits for the network.
handler_id = logger.add(sink, level="INFO")


def process_order(order_id: int, items: dict[str, int]) -> int:
    # bind() returns a logger whose records carry these fields: in CloudWatch each one is a top-level
    # JSON field, so Logs Insights can filter on it (`filter order_id = 42`).
    log = logger.bind(order_id=order_id)
    log.info("processing order with {} items", len(items))
    if any(quantity <= 0 for quantity in items.values()):
        raise ValueError(f"order {order_id}: every quantity must be positive")
    log.debug("not shipped: below the sink's INFO level")
    return sum(items.values())


def main() -> None:
    logger.info("script started")

    # contextualize() adds fields to every record logged inside the block, even from called functions.
    with logger.contextualize(request_id="req-001"):
        process_order(42, {"apple": 3, "pear": 2})
        logger.warning("stock low for {}", "pear")

    try:
        process_order(43, {"apple": 0})
    except ValueError:
        # logger.exception logs at ERROR with the traceback; in CloudWatch it arrives as an "exception"
        # field: {"type": "ValueError", "value": "...", "traceback": "Traceback (most recent call last): ..."}.
        logger.bind(order_id=43).exception("order failed")

    logger.info("script finished")

    # Removing the handler stops the sink: it delivers what is still queued (within shutdown_timeout).
    # At interpreter exit loguru does the same by itself; doing it here lets us print final stats.
    logger.remove(handler_id)
    stats = sink.stats
    print(f"sent={stats.sent} batches={stats.batches} dropped={stats.dropped} rejected={stats.rejected}")
    print(f"log group {sink.log_group!r}, stream {sink.log_stream!r}")


if __name__ == "__main__":
    main()

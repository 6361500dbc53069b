"""An ordinary loguru script, shipped to CloudWatch Logs by environment variables alone.

The only change from a plain loguru script is `import loguru_cloudwatch`: when LOGURU_CLOUDWATCH_LOG_GROUP
is set, that import adds a CloudWatchSink to loguru's logger, configured from the LOGURU_CLOUDWATCH_*
variables (without it, the import does nothing). Against a local endpoint (see README.md):

    export LOGURU_CLOUDWATCH_LOG_GROUP=examples/env-only
    export LOGURU_CLOUDWATCH_LEVEL=INFO
    export LOGURU_CLOUDWATCH_ENDPOINT_URL=http://127.0.0.1:5000
    python examples/env_only.py
"""

from loguru import logger

import loguru_cloudwatch  # noqa: F401  (configures the sink from the environment, if asked to)


def main() -> None:
    logger.info("job started")
    for batch in range(1, 4):
        logger.bind(batch=batch).info("batch {} processed", batch)
    logger.debug("details that stay local when LOGURU_CLOUDWATCH_LEVEL=INFO")
    try:
        int("forty-two")
    except ValueError:
        logger.exception("could not parse the input")
    logger.success("job done")


if __name__ == "__main__":
    main()
    # Nothing to flush or close: at exit loguru stops the sink, which delivers what it still holds.

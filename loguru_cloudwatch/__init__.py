"""loguru-cloudwatch: ship loguru records to AWS CloudWatch Logs.

>>> from loguru import logger
>>> from loguru_cloudwatch import CloudWatchSink
>>> logger.add(CloudWatchSink("my-group", "my-stream"), level="INFO")  # doctest: +SKIP
"""

from ._report import SinkProblem
from ._sink import CloudWatchSink
from ._stats import SinkStats

__all__ = ["CloudWatchSink", "SinkProblem", "SinkStats", "__version__"]

__version__ = "0.1.0"

"""loguru-cloudwatch: ship loguru records to AWS CloudWatch Logs.

>>> from loguru import logger
>>> from loguru_cloudwatch import CloudWatchSink
>>> logger.add(CloudWatchSink("my-group", "my-stream"), level="INFO")  # doctest: +SKIP
"""

from . import _env
from ._env import configure_from_env
from ._report import SinkProblem
from ._signals import install_sigterm_handler
from ._sink import CloudWatchSink
from ._sink import force_flush_all as force_flush
from ._stats import SinkStats

__all__ = [
    "CloudWatchSink",
    "SinkProblem",
    "SinkStats",
    "__version__",
    "configure_from_env",
    "force_flush",
    "install_sigterm_handler",
]

__version__ = "0.1.0"

# With LOGURU_CLOUDWATCH_LOG_GROUP set, add the environment's sink to loguru's logger (once, however often
# this runs: see _env); without it, nothing happens.
_env.configure_on_import()

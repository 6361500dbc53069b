"""python -m loguru_cloudwatch: the command line's parser; the commands are ``_demo`` and ``_check``.

``demo`` tries the sink with no AWS account (a local endpoint); ``check`` verifies a real setup.
"""

from __future__ import annotations

import argparse
import sys

from ._cli import FAILED, Failure
from ._options import BY_NAME


def _default_help(option: str, otherwise: str = "") -> str:
    """A help text's "default: ..." part: the option's variable, then the sink's own default (or ``otherwise``)."""
    entry = BY_NAME[option]
    assert entry.variable is not None
    if entry.default is not None:
        otherwise = f'"{entry.default}"'
    return f"default: ${entry.variable.name}" + (f", else {otherwise}" if otherwise else "")


def _run_demo(args: argparse.Namespace) -> int:
    from . import _demo

    return _demo.run(args)


def _run_check(args: argparse.Namespace) -> int:
    from . import _check

    return _check.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loguru_cloudwatch",
        description="Ship loguru records to AWS CloudWatch Logs: try it locally, or check a real setup.",
        epilog="Run 'python -m loguru_cloudwatch COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="ship records to a local CloudWatch endpoint and read them back (no AWS account needed)",
        description=(
            "Start a local CloudWatch Logs endpoint (moto's server on 127.0.0.1), ship a few records through "
            "a real CloudWatchSink, read them back through the CloudWatch Logs API and print them. Needs no "
            "AWS account and no network: pip install 'loguru-cloudwatch[demo]'."
        ),
    )
    demo.set_defaults(run=_run_demo)
    check = commands.add_parser(
        "check",
        help="check credentials, region, permissions and delivery of a real setup",
        description=(
            "Check a real setup: report where the AWS credentials and region come from (never printing a "
            "secret) and the endpoint, create the log group and stream if missing (as the sink would), send "
            "one test event and read it back. Exits 1 with a one-line explanation, naming the IAM permission "
            "to add, when something is missing. Options default to the LOGURU_CLOUDWATCH_* variables."
        ),
    )
    check.add_argument("--group", metavar="NAME", help=f"log group ({_default_help('log_group')})")
    check.add_argument(
        "--stream",
        metavar="TEMPLATE",
        help=f"log stream name template ({_default_help('log_stream')})",
    )
    check.add_argument(
        "--region",
        help=f"AWS region ({_default_help('region_name', 'AWS_REGION, AWS_DEFAULT_REGION, the profile')})",
    )
    check.add_argument(
        "--endpoint-url", metavar="URL", help=f"CloudWatch Logs endpoint ({_default_help('endpoint_url')})"
    )
    check.add_argument(
        "--no-read-back",
        action="store_true",
        help="do not read the test event back (for identities without logs:GetLogEvents)",
    )
    check.set_defaults(run=_run_check)
    return parser


def _fail(message: str, status: int) -> int:
    sys.stdout.flush()
    print(f"error: {message}", file=sys.stderr, flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except Failure as failure:
        return _fail(str(failure).replace("\n", " "), failure.status)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as error:  # one line, not a traceback
        return _fail(f"unexpected {type(error).__name__}: {str(error).replace(chr(10), ' ')}", FAILED)
    return code


if __name__ == "__main__":
    from loguru import logger

    from . import _env

    _env.discard_for_cli()  # normally never added (see _env.launched_as_own_cli)
    logger.remove()  # the command line prints its own output: no default stderr handler
    sys.exit(main())

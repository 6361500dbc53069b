"""What a failed call means (``_errors``): real botocore errors, from moto and from endpoints that are not
CloudWatch Logs, classified and described in one line."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest

from loguru_cloudwatch import _errors
from tests.support.aws import make_logs_client
from tests.support.foreign_endpoint import ForeignEndpoint


def failure_of(call: Any) -> botocore.exceptions.ClientError:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    return caught.value


def put_one(client: Any) -> Any:
    return client.put_log_events(
        logGroupName="nowhere", logStreamName="none", logEvents=[{"timestamp": 1, "message": "x"}]
    )


def test_cloudwatch_s_own_answer_keeps_its_code_and_message(endpoint: str) -> None:
    error = failure_of(lambda: put_one(make_logs_client(endpoint, max_attempts=1)))
    assert _errors.error_code(error) == "ResourceNotFoundException"
    assert _errors.classify(error) == _errors.NOT_FOUND
    assert _errors.foreign_answer(error) is None
    assert _errors.describe_error(error).startswith("ResourceNotFoundException: An error occurred")


@pytest.mark.parametrize(
    ("page", "code", "description"),
    [
        (
            "html",
            "404",
            "HTTP 404 with an HTML page ('404 Not Found'), not CloudWatch Logs' JSON: check the endpoint URL",
        ),
        (
            "xml-other",
            "NoSuchBucket",
            "NoSuchBucket: The specified bucket does not exist (HTTP 404 with an XML error, not CloudWatch Logs' "
            "JSON: check the endpoint URL)",
        ),
        (
            "xml-unknown-key",
            "InvalidAccessKeyId",
            "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records. (HTTP 403 with an "
            "XML error, not CloudWatch Logs' JSON: check the endpoint URL)",
        ),
    ],
)
def test_another_server_s_page_is_described_not_quoted(page: str, code: str, description: str) -> None:
    with ForeignEndpoint(page) as url:
        error = failure_of(lambda: put_one(make_logs_client(url, max_attempts=1)))
    assert _errors.error_code(error) == code
    assert _errors.describe_error(error) == description
    assert code not in _errors.AUTH_CODES or _errors.classify(error) == _errors.AUTH


def test_a_long_answer_is_cut_to_one_line() -> None:
    error = botocore.exceptions.ClientError(
        {"Error": {"Code": "InternalFailure", "Message": "line one\nline two " + "x" * 500}}, "PutLogEvents"
    )
    description = _errors.describe_error(error)
    assert "\n" not in description and len(description) <= 330 and description.endswith("...")


def raw_answer(status: int, body: str) -> botocore.exceptions.ClientError:
    """What botocore makes of a non-JSON answer to a JSON-protocol call: the status as code, the body as
    message (as the ForeignEndpoint tests above show)."""
    response: Any = {"Error": {"Code": str(status), "Message": body}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "PutLogEvents")


def test_what_is_quoted_of_a_page_is_bounded() -> None:
    error = raw_answer(404, f"<html><head><title>{'t' * 5000}</title></head></html>")
    assert len(_errors.describe_error(error)) < 320
    error = raw_answer(403, f"<Error><Code>AccessDenied</Code><Message>{'m' * 5000}</Message></Error>")
    assert len(_errors.describe_error(error)) < 500 and _errors.classify(error) == _errors.AUTH


def test_an_xml_answer_with_a_byte_order_mark_is_read_not_quoted() -> None:
    body = (
        "\ufeff<?xml version='1.0'?><Error><Code>ThrottlingException</Code>"
        "<AWSAccessKeyId>AKIAX</AWSAccessKeyId></Error>"
    )
    error = raw_answer(400, body)
    assert _errors.error_code(error) == "ThrottlingException"
    assert _errors.is_throttling(error) and _errors.classify(error) == _errors.RETRYABLE
    assert "AKIAX" not in _errors.describe_error(error)

"""What an error from a CloudWatch Logs call means: its class (what the worker does about it), its code
and a one-line description that never quotes a secret or a raw HTML/XML page.

Shared by the shipper (how to go on after a failed call) and ``check`` (what to tell the user).
"""

from __future__ import annotations

import re

import botocore.exceptions

# Error classes, as the worker acts on them.
RETRYABLE = "retryable"  # throttling, 5xx, network: keep the batch, back off
ANSWER_LOST = "answer_lost"  # the request may have been stored: retrying may duplicate
INVALID = "invalid"  # InvalidParameter: never resend unchanged
NOT_FOUND = "not_found"  # create the group/stream, then resend
AUTH = "auth"  # credentials refused: report once, retry slowly
UNTRUSTED = "untrusted"  # the endpoint's TLS certificate failed verification: a configuration problem
ALREADY_ACCEPTED = "already_accepted"  # an earlier attempt was stored

_THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",
    }
)
#: Error codes of refused credentials or permissions, by what must be fixed (``check`` explains each).
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "NotAuthorized"})
UNKNOWN_KEY_CODES = frozenset({"UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId"})
BAD_SECRET_CODES = frozenset({"InvalidSignatureException", "SignatureDoesNotMatch", "IncompleteSignature"})
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
#: Every code of refused credentials or permissions.
AUTH_CODES = (
    ACCESS_DENIED_CODES
    | UNKNOWN_KEY_CODES
    | BAD_SECRET_CODES
    | EXPIRED_CODES
    | {"MissingAuthenticationToken", "AuthFailure"}
)
#: Errors of a request that never reached CloudWatch (or whose answer never came back).
UNREACHABLE_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.SSLError,
    botocore.exceptions.ProxyConnectionError,
)


def classify(error: BaseException) -> str:
    """The worker's error class of an exception raised by a boto3 call."""
    if isinstance(error, botocore.exceptions.ClientError):
        code = error_code(error)  # the code inside another service's XML error, too
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "ResourceNotFoundException":
            return NOT_FOUND
        if code in ("InvalidParameterException", "ValidationException", "SerializationException"):
            return INVALID
        if code == "DataAlreadyAcceptedException":
            return ALREADY_ACCEPTED
        if code in AUTH_CODES or status in (401, 403):
            return AUTH
        return RETRYABLE
    if isinstance(error, (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError)):
        return AUTH
    if isinstance(error, botocore.exceptions.ParamValidationError):
        return INVALID
    if isinstance(error, botocore.exceptions.SSLError) and "certificate verify failed" in str(error).lower():
        return UNTRUSTED
    if isinstance(
        error,
        (
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ResponseStreamingError,
        ),
    ):
        return ANSWER_LOST
    return RETRYABLE


_XML_FIELD_RE = re.compile(r"<(Code|Message)>([^<]*)</(?:Code|Message)>")
_HTML_TITLE_RE = re.compile(r"<title[^>]*>([^<]*)</title>", re.IGNORECASE)
#: The most characters quoted from what an endpoint said.
_SAID = 200


def _answer(error: BaseException) -> tuple[str, str, str | None]:
    """``(code, message, what answered)`` of a ClientError; the last is None for CloudWatch's JSON.

    An answer that is not CloudWatch Logs' JSON (a web server's HTML page, another service's XML error)
    reaches here with the HTTP status as the code and the raw body as the message: the code and message
    inside an XML error are read from it, an HTML page is named by its title.
    """
    fields = getattr(error, "response", {}).get("Error", {})
    code = str(fields.get("Code", "") or type(error).__name__)
    message = " ".join(str(fields.get("Message", "")).split()).lstrip("\ufeff")
    if not code.isdigit() or not message.startswith("<"):
        return code, message, None
    xml = {match.group(1): match.group(2).strip() for match in _XML_FIELD_RE.finditer(message)}
    if "Code" in xml:
        return xml["Code"][:_SAID], xml.get("Message", "")[:_SAID], f"HTTP {code} with an XML error"
    title = _HTML_TITLE_RE.search(message)
    page = "an HTML page" if "<html" in message.lower() else "markup"
    if title and title.group(1).strip():
        page += f" ({title.group(1).strip()[:_SAID]!r})"
    return code, "", f"HTTP {code} with {page}"


def foreign_answer(error: BaseException) -> str | None:
    """How an answer that is not CloudWatch Logs' own is described (None for CloudWatch's answers)."""
    answered = _answer(error)[2] if isinstance(error, botocore.exceptions.ClientError) else None
    return None if answered is None else f"{answered}, not CloudWatch Logs' JSON: check the endpoint URL"


def error_code(error: BaseException) -> str:
    if isinstance(error, botocore.exceptions.ClientError):
        return _answer(error)[0]
    return type(error).__name__


def error_message(error: BaseException) -> str:
    """What AWS said (one line, at most 300 characters), without botocore's wrapping; "" when nothing."""
    if isinstance(error, botocore.exceptions.ClientError):
        return _answer(error)[1][:300]
    return ""


def is_throttling(error: BaseException) -> bool:
    return error_code(error) in _THROTTLING_CODES


def describe_error(error: BaseException) -> str:
    """A one-line description that never contains credentials (botocore messages do not carry them)."""
    if isinstance(error, botocore.exceptions.ClientError):
        code, message, answered = _answer(error)
        if answered is not None:  # not CloudWatch's answer: say what it was instead of quoting its body
            foreign = foreign_answer(error)
            return f"{code}: {message} ({foreign})" if message else f"{foreign}"
    text = str(error).replace("\n", " ")
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{error_code(error)}: {text}" if text else error_code(error)

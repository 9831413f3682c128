"""Checking that a webhook really came from Twilio: the `X-Twilio-Signature` header.

Twilio signs the full URL it requested, followed by every POST parameter as name + value with the names
sorted, with HMAC-SHA1 keyed by the account's auth token, and sends it base64-encoded. A request with a
JSON body instead carries `bodySHA256=<hex SHA-256 of the body>` in its URL: the signature then covers
the URL alone and the body must hash to that value. Twilio is not consistent about whether the signed
URL names the default port, so both forms are tried, as its own libraries do.

This follows `twilio.request_validator.RequestValidator` (twilio-python 9) case for case, the tests
check so on generated requests; it differs only where that one would raise or misread a URL with user
info or an IPv6 host. Comparisons take constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Final
from urllib.parse import ParseResult, parse_qs, urlparse

__all__ = [
    "HMAC_SHA1",
    "HMAC_SHA256",
    "SIGNATURE_HEADER",
    "Params",
    "body_sha256",
    "compute_signature",
    "validate",
]

SIGNATURE_HEADER: Final = "X-Twilio-Signature"
HMAC_SHA1: Final = "HMAC_SHA1"
HMAC_SHA256: Final = "HMAC_SHA256"
_HASHES: Final = {HMAC_SHA1: hashlib.sha1, HMAC_SHA256: hashlib.sha256}

# Form parameters as a mapping (a value may be a list of repeated values) or as (name, value) pairs.
Params = Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]]


def _grouped(params: Params | None) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    if params is None:
        return grouped
    if isinstance(params, Mapping):
        getall = getattr(params, "getall", None)  # multidict / aiohttp's request.post()
        for name in params:
            if callable(getall):
                values = [str(v) for v in getall(name)]
            else:
                value = params[name]
                values = [value] if isinstance(value, str) else [str(v) for v in value]
            grouped.setdefault(str(name), []).extend(values)
    else:
        for name, value in params:
            grouped.setdefault(str(name), []).append(str(value))
    return grouped


def compute_signature(
    auth_token: str, url: str, params: Params | None = None, *, algorithm: str = HMAC_SHA1
) -> str:
    """The signature Twilio sends for a request to `url` with form `params` (none for a JSON body).

    Names are sorted, and so are each name's values; a name with the same value twice counts once,
    as in Twilio's own validator. Raises ValueError for an unknown `algorithm`.
    """
    digest = _HASHES.get(algorithm.upper())
    if digest is None:
        raise ValueError(f"Unknown webhook signature algorithm {algorithm!r}; use HMAC_SHA1 or HMAC_SHA256.")
    text = url
    for name, values in sorted(_grouped(params).items()):
        for value in sorted(set(values)):
            text += name + value
    mac = hmac.new(auth_token.encode("utf-8"), text.encode("utf-8"), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


def body_sha256(body: str | bytes) -> str:
    """The hex SHA-256 Twilio puts in `bodySHA256` for a JSON body."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return hashlib.sha256(raw).hexdigest()


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _host_end(url: ParseResult) -> int:
    """Where the host ends in the netloc (before `:port`), minding user info and IPv6 brackets."""
    netloc = url.netloc
    start = netloc.rfind("@") + 1
    colon = netloc.rfind(":", start)
    return colon if colon > netloc.rfind("]", start) else len(netloc)


def _with_and_without_port(url: str) -> tuple[str, str] | None:
    parsed = urlparse(url)
    try:
        port = parsed.port
    except ValueError:
        return None  # a port that is not a number in range: nobody signed that
    if port:
        with_port = parsed.geturl()
        without = parsed._replace(netloc=parsed.netloc[: _host_end(parsed)]).geturl()
    else:
        default = 443 if parsed.scheme == "https" else 80
        with_port = parsed._replace(netloc=f"{parsed.netloc}:{default}").geturl()
        without = parsed.geturl()
    return with_port, without


def validate(
    auth_token: str,
    url: str,
    params: Params | str | bytes | None,
    signature: str,
    *,
    algorithm: str = HMAC_SHA1,
) -> bool:
    """Whether `signature` is Twilio's for this request.

    `url` is the full URL Twilio requested (scheme, host, port as received, path and query). `params`
    is the form body's parameters, or the raw body (str or bytes) of a JSON request, whose URL must
    then carry the matching `bodySHA256`. An unknown `algorithm` validates nothing.
    """
    if algorithm.upper() not in _HASHES or not isinstance(signature, str):
        return False
    forms = _with_and_without_port(url)
    if forms is None:
        return False
    body_ok = True
    fields: Params | None = params if not isinstance(params, str | bytes) else None
    if isinstance(params, str | bytes):
        declared = parse_qs(urlparse(url).query).get("bodySHA256")
        if declared:
            body_ok = _equal(body_sha256(params), declared[0])
        elif params:
            return False  # a raw body is only signed through its hash in the URL
    with_port, without = forms
    # Both are computed and compared every time, so the timing says nothing about which one matched.
    matches = [
        _equal(compute_signature(auth_token, candidate, fields, algorithm=algorithm), signature)
        for candidate in (without, with_port)
    ]
    return body_ok and any(matches)

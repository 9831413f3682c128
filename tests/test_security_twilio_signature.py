"""Our Twilio webhook signature check agrees with Twilio's own `RequestValidator` on generated requests."""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from bot.twilio.signature import (
    HMAC_SHA1,
    HMAC_SHA256,
    body_sha256,
    compute_signature,
    validate,
)

SETTINGS = settings(max_examples=100, deadline=None)

tokens = st.text(min_size=1, max_size=40)
texts = st.text(max_size=30)  # any unicode, control characters and empty strings included
names = st.text(min_size=1, max_size=15)
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hosts = st.lists(labels, min_size=1, max_size=3).map(".".join)
ports = st.none() | st.sampled_from([80, 443]) | st.integers(1, 65535)
paths = st.lists(st.from_regex(r"[A-Za-z0-9._~%-]{1,12}", fullmatch=True), max_size=3).map(
    lambda parts: "/" + "/".join(parts)
)
queries = st.lists(st.tuples(names, texts), max_size=3).map(urlencode)
algorithms = st.sampled_from([HMAC_SHA1, HMAC_SHA256])


@st.composite
def urls(draw: st.DrawFn) -> str:
    """A webhook URL as a server might see it: either scheme, a port or none, a path, maybe a query."""
    scheme = draw(st.sampled_from(["http", "https"]))
    port = draw(ports)
    netloc = draw(hosts) + (f":{port}" if port is not None else "")
    query = draw(queries)
    return f"{scheme}://{netloc}{draw(paths)}" + (f"?{query}" if query else "")


# Repeated names, repeated identical pairs and unicode everywhere.
form_pairs = st.lists(
    st.tuples(st.sampled_from(["To", "From", "Body", "MediaUrl0"]) | names, texts), max_size=8
)


def theirs(token: str, url: str, pairs: list[tuple[str, str]], signature: str, algorithm: str) -> bool:
    return bool(RequestValidator(token).validate(url, MultiDict(pairs), signature, algorithm=algorithm))


def their_signature(token: str, url: str, pairs: list[tuple[str, str]], algorithm: str) -> str:
    return str(RequestValidator(token).compute_signature(url, MultiDict(pairs), algorithm=algorithm))


@SETTINGS
@given(token=tokens, url=urls(), pairs=form_pairs, algorithm=algorithms)
def test_we_compute_the_same_signature_as_twilio(
    token: str, url: str, pairs: list[tuple[str, str]], algorithm: str
) -> None:
    """Form parameters in any order, repeated or not: our signature is Twilio's, as pairs or a multidict."""
    expected = their_signature(token, url, pairs, algorithm)
    assert compute_signature(token, url, pairs, algorithm=algorithm) == expected
    assert compute_signature(token, url, MultiDict(pairs), algorithm=algorithm) == expected
    assert compute_signature(token, url, list(reversed(pairs)), algorithm=algorithm) == expected


@SETTINGS
@given(token=tokens, url=urls(), pairs=form_pairs, algorithm=algorithms, other_form=st.booleans())
def test_both_accept_what_twilio_signed_with_or_without_the_port(
    token: str, url: str, pairs: list[tuple[str, str]], algorithm: str, other_form: bool
) -> None:
    """Twilio may sign the URL with the port named or not, whichever way the server sees it: both accept."""
    signed_url = url
    if other_form:
        parsed = urlparse(url)
        if parsed.port is None:
            default = 443 if parsed.scheme == "https" else 80
            signed_url = parsed._replace(netloc=f"{parsed.netloc}:{default}").geturl()
        else:
            signed_url = parsed._replace(netloc=parsed.hostname or "").geturl()
    signature = their_signature(token, signed_url, pairs, algorithm)
    assert theirs(token, url, pairs, signature, algorithm)
    assert validate(token, url, pairs, signature, algorithm=algorithm)


tampers = st.sampled_from(["signature", "value", "name", "extra", "url", "token", "drop"])


@SETTINGS
@given(
    token=tokens,
    url=urls(),
    pairs=form_pairs,
    algorithm=algorithms,
    tamper=tampers,
    junk=st.text(min_size=1, max_size=5),
)
def test_both_judge_a_tampered_request_alike(
    token: str, url: str, pairs: list[tuple[str, str]], algorithm: str, tamper: str, junk: str
) -> None:
    """Change the signature, a value, a name, the URL, the token or drop a field: both give one verdict."""
    signature = their_signature(token, url, pairs, algorithm)
    checked_token, checked_url, checked = token, url, list(pairs)
    if tamper == "signature":
        signature = signature[:-2] + ("A=" if not signature.endswith("A=") else "B=")
    elif tamper == "value" and checked:
        checked[0] = (checked[0][0], checked[0][1] + junk)
    elif tamper == "name" and checked:
        checked[0] = (checked[0][0] + junk, checked[0][1])
    elif tamper == "extra":
        checked.append(("Injected" + junk, junk))
    elif tamper == "url":
        checked_url = url + ("&" if "?" in url else "?") + "x=" + junk
    elif tamper == "token":
        checked_token = token + junk
    elif tamper == "drop" and checked:
        checked.pop()
    expected = theirs(checked_token, checked_url, checked, signature, algorithm)
    assert validate(checked_token, checked_url, checked, signature, algorithm=algorithm) is expected
    if tamper in {"signature", "url", "token", "extra"}:
        assert not expected


json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
).map(lambda value: json.dumps(value, ensure_ascii=False))


@SETTINGS
@given(token=tokens, base=urls(), body=json_bodies, other=json_bodies, algorithm=algorithms)
def test_a_json_body_is_checked_through_body_sha256(
    token: str, base: str, body: str, other: str, algorithm: str
) -> None:
    """bodySHA256 in the URL: the signature covers the URL only, and the body must hash to that value."""
    url = base + ("&" if "?" in base else "?") + "bodySHA256=" + body_sha256(body)
    signature = str(RequestValidator(token).compute_signature(url, {}, algorithm=algorithm))
    assert RequestValidator(token).validate(url, body, signature, algorithm=algorithm)
    assert validate(token, url, body, signature, algorithm=algorithm)
    assert validate(token, url, body.encode("utf-8"), signature, algorithm=algorithm)
    expected = bool(RequestValidator(token).validate(url, other, signature, algorithm=algorithm))
    assert validate(token, url, other, signature, algorithm=algorithm) is expected
    assert expected is (other == body)


@pytest.mark.parametrize(
    ("url", "signed"),
    [
        ("https://bot.example.com/twilio/status", "https://bot.example.com:443/twilio/status"),
        ("https://bot.example.com:443/twilio/status", "https://bot.example.com/twilio/status"),
        ("http://bot.example.com:8080/twilio/inbound?x=1", "http://bot.example.com:8080/twilio/inbound?x=1"),
    ],
)
def test_ports_are_handled_like_twilio(url: str, signed: str) -> None:
    """The default port may be named on one side only; a non-default port must match."""
    params = {"To": "+15551234567", "Body": "hi"}
    signature = compute_signature("token", signed, params)
    assert validate("token", url, params, signature)
    assert RequestValidator("token").validate(url, params, signature)


def test_odd_input_is_rejected_without_raising() -> None:
    """A port out of range, an unknown algorithm, a raw body without its hash, a wrong body hash: False."""
    params = {"Body": "hi"}
    assert not validate("t", "https://h:99999/x", params, "sig")
    assert not validate(
        "t", "https://h/x", params, compute_signature("t", "https://h/x", params), algorithm="MD5"
    )
    assert not validate("t", "https://h/x", '{"a": 1}', compute_signature("t", "https://h/x"))
    wrong = "https://h/x?bodySHA256=" + "0" * 64
    assert not validate("t", wrong, '{"a": 1}', compute_signature("t", wrong))
    with pytest.raises(ValueError, match="algorithm"):
        compute_signature("t", "https://h/x", algorithm="MD5")

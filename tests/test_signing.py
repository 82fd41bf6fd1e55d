"""Standard Webhooks signatures: our signer and verifier against the reference package."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from bridge.signing import SignatureError, sign, signed_headers, verify
from tests.helpers import OTHER_SECRET, SECRET

NOW = 1_795_000_000
BODY = b'{"hook":"PreCronJob","vars":{},"occurred_at":"2026-11-21T11:59:00+00:00"}'


def test_known_vector_from_the_standard_webhooks_spec() -> None:
    # The spec's own example secret, id, timestamp and payload.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_what_we_sign_verifies_with_the_reference_package() -> None:
    now = int(datetime.now(UTC).timestamp())
    headers = signed_headers([SECRET], "msg_ours", now, BODY)
    assert Webhook(SECRET).verify(BODY, headers) == {"hook": "PreCronJob", "vars": {},
                                                     "occurred_at": "2026-11-21T11:59:00+00:00"}


def test_what_the_reference_package_signs_verifies_here() -> None:
    stamp = datetime.fromtimestamp(NOW, tz=UTC)
    signature = Webhook(SECRET).sign("msg_theirs", stamp, BODY.decode())
    headers = {"webhook-id": "msg_theirs", "webhook-timestamp": str(NOW),
               "webhook-signature": signature}
    assert verify([SECRET], headers, BODY, NOW, 300).msg_id == "msg_theirs"


def test_any_of_several_signatures_and_secrets_matches() -> None:
    headers = signed_headers([OTHER_SECRET, SECRET], "msg_r", NOW, BODY)
    assert verify([SECRET], headers, BODY, NOW, 300)
    assert verify([OTHER_SECRET], headers, BODY, NOW, 300)


@pytest.mark.parametrize(("offset", "ok"), [(-300, True), (300, True), (-301, False),
                                            (301, False)])
def test_tolerance_is_inclusive_both_ways(offset, ok) -> None:
    headers = signed_headers([SECRET], "msg_t", NOW + offset, BODY)
    if ok:
        verify([SECRET], headers, BODY, NOW, 300)
    else:
        with pytest.raises(SignatureError) as caught:
            verify([SECRET], headers, BODY, NOW, 300)
        assert caught.value.code == "stale_timestamp"


@given(st.binary(min_size=1, max_size=200), st.data())
def test_any_single_byte_change_breaks_the_signature(body: bytes, data: st.DataObject) -> None:
    headers = signed_headers([SECRET], "msg_h", NOW, body)
    index = data.draw(st.integers(0, len(body) - 1))
    flipped = bytes([body[index] ^ data.draw(st.integers(1, 255))])
    mutated = body[:index] + flipped + body[index + 1:]
    with pytest.raises(SignatureError):
        verify([SECRET], headers, mutated, NOW, 300)


@given(st.dictionaries(st.sampled_from(["webhook-id", "webhook-timestamp",
                                        "webhook-signature"]), st.text(max_size=80)))
def test_garbage_headers_raise_only_signature_errors(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        verify([SECRET], headers, BODY, NOW, 300)

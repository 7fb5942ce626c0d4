import hashlib
import hmac

from footprint.identity import sign_user_id, verify_user_hash
from footprint.models.segment import Source


def test_a_user_hash_is_the_hmac_sha256_of_the_user_id_in_hex() -> None:
    expected = hmac.new(b"s3cret", b"user-42", hashlib.sha256).hexdigest()
    assert sign_user_id("s3cret", "user-42") == expected


def test_only_the_signature_of_that_user_id_with_that_secret_verifies() -> None:
    good = sign_user_id("s3cret", "user-42")
    assert verify_user_hash("s3cret", "user-42", good)
    assert verify_user_hash("s3cret", "user-42", good.upper())
    assert not verify_user_hash("s3cret", "user-43", good)
    assert not verify_user_hash("other", "user-42", good)
    assert not verify_user_hash(None, "user-42", good)
    assert not verify_user_hash("s3cret", "user-42", None)
    assert not verify_user_hash("s3cret", "user-42", "")


def test_the_identity_secret_never_shows_in_a_source_repr() -> None:
    source = Source(source_id="shop", identity_secret="s3cret")
    assert "s3cret" not in repr(source)

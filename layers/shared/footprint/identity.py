"""Signed identity: how a browser proves which known contact it is.

The write key is public, so a browser call that names a ``userId`` proves nothing. The site's
backend, which knows who is logged in, signs the userId with the source's ``identity_secret``
(never sent to browsers) and puts the signature in the page; the snippet sends it as
``user_hash``. This is the scheme Intercom ("identity verification") and Customer.io's in-app
messaging use: HMAC-SHA256 of the userId, lowercase hex.

    user_hash = hmac.new(identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
"""

from __future__ import annotations

import hashlib
import hmac


def sign_user_id(identity_secret: str, user_id: str) -> str:
    """The ``user_hash`` a site's backend puts in the page for ``user_id``."""
    return hmac.new(identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_user_hash(identity_secret: str | None, user_id: str, user_hash: str | None) -> bool:
    """Whether ``user_hash`` signs ``user_id``; always False for a source without a secret."""
    if not identity_secret or not user_hash or not user_id:
        return False
    return hmac.compare_digest(sign_user_id(identity_secret, user_id), user_hash.strip().lower())

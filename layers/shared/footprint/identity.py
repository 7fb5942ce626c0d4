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

from footprint.models.events import TrackedEvent, Trust
from footprint.models.segment import Source

# Where a Segment call carries its signed identity (a top-level ``user_hash`` is moved here).
USER_HASH_CONTEXT_KEY = "user_hash"


def sign_user_id(identity_secret: str, user_id: str) -> str:
    """The ``user_hash`` a site's backend puts in the page for ``user_id``."""
    return hmac.new(identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_user_hash(identity_secret: str | None, user_id: str, user_hash: str | None) -> bool:
    """Whether ``user_hash`` signs ``user_id``; always False for a source without a secret."""
    if not identity_secret or not user_hash or not user_id:
        return False
    return hmac.compare_digest(sign_user_id(identity_secret, user_id), user_hash.strip().lower())


def vouched(event: TrackedEvent, source: Source) -> TrackedEvent:
    """``event`` as track stores it: with who vouches for its userId, and without the signature.

    A trusted source's calls are "server"; a call whose ``context.user_hash`` signs its userId is
    "signed"; anything else is "browser", whatever it claims. The signature is not stored: it never
    expires, so a copy in EventsTable would let anyone who reads the table act as that contact.
    """
    context = event.context
    user_hash = context.get(USER_HASH_CONTEXT_KEY)
    if USER_HASH_CONTEXT_KEY in context:
        context = {key: value for key, value in context.items() if key != USER_HASH_CONTEXT_KEY}
    trust: Trust
    if source.trusted:
        trust = "server"
    elif (
        event.user_id
        and isinstance(user_hash, str)
        and verify_user_hash(source.identity_secret, event.user_id, user_hash)
    ):
        trust = "signed"
    else:
        trust = "browser"
    return event.model_copy(update={"trust": trust, "context": context})

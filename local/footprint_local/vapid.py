"""VAPID keys for web push: the secret the send function reads, and the browser's applicationServerKey."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def new_vapid_secret(subject: str) -> dict[str, Any]:
    """A fresh P-256 key pair as the JSON the web push channel expects in Secrets Manager.

    ``public_key`` (base64url, uncompressed point) is what the site passes to
    ``pushManager.subscribe({applicationServerKey})``; ``subject`` is a mailto: or https: contact.
    """
    private_key = ec.generate_private_key(ec.SECP256R1())
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    point = private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    public_key = base64.urlsafe_b64encode(point).decode("ascii").rstrip("=")
    return {"private_key_pem": private_pem, "public_key": public_key, "subject": subject}

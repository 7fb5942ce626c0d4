"""Channel adapters: one module per channel, each a ``ChannelSender`` (footprint.services.send).

- ``onsite``   onsite_form, onsite_push: no external call; the outbox row is the visitor's inbox.
- ``web_push`` web push (pywebpush: aes128gcm encryption, VAPID signature), keys in Secrets Manager.
- ``email``    Amazon SES v2, from the stack's sender address.
- ``webhook``  JSON POST to the URL in the step's content (CRM, call centre).
- ``sms``      SMS through an HTTP relay of the user's choice (configured by URL).
- ``zalo_zns`` Zalo ZNS template messages through an HTTP relay holding the Official Account token.

Adapters return a DeliveryResult for an outcome that is final ("sent", "queued_onsite", "failed")
and raise RetryableDeliveryError when a later attempt may succeed; send_wiring decides which are
configured. ``http_json`` holds the JSON-over-HTTP plumbing shared by the last three.
"""

"""Footprint: a customer journey engine that runs in your own AWS account.

Layers (imports only point downwards):
- ``footprint.models``   pydantic models shared by every function (no I/O).
- ``footprint.engine``   the pure journey engine (stdlib + pydantic, no clock, no boto3).
- ``footprint.services`` use cases that wire models, engine and ports together.
- ``footprint.adapters`` the only modules that import boto3 or pywebpush.
"""

"""Adapters: the only modules that import boto3 (and pywebpush). Each implements a port declared in
``footprint.services`` and turns AWS errors into the service's own exceptions."""

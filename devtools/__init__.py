"""Tooling shared by bin/, bench/ and tests/: the project's facts, Docker and HTTP helpers.

Not part of the image (see .dockerignore): the app never imports it.
"""

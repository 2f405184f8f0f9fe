"""The request path as plain functions; Redis only in cache.py."""

"""Offline evaluation: ranking metrics and protocols."""

"""Reranking: engagement/value scalarisation and MMR diversity."""

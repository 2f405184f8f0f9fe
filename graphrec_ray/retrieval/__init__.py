"""Candidate retrieval models (LightGCN, MF-BPR, popularity), losses, negative samplers."""

"""Multi-task ranking: shared feature builder and MMoE."""

"""Raw data in: the KuaiRec reader, its download, and the seeded simulator (with exact ground truth)."""

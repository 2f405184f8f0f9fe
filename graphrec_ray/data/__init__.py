"""Raw logs in: KuaiRec reader, simulator, validation, labels, split, propensities."""

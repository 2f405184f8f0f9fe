"""Preprocessing: raw KuaiRec logs -> validated, labelled, split Parquet with id maps and propensities."""

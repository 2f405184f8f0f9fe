"""FAISS item index over retrieval embeddings."""

"""Custom classifiers: heads trained on the shared embeddings from labelled examples."""

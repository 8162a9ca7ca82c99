"""Batch jobs on Celery: the OpenAI Batch API (files + batches) for BabelStack's endpoints."""

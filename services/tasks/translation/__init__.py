"""Translation: backends (``llm`` through the generation service, ``seq2seq`` models),
sentence segmentation and reassembly, HTML text nodes, and the RPC handlers."""

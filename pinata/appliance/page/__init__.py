"""The web page's parts: address masking, the per-minute history and its
chart, the self-talk ladder, and the document frame with its policy."""

"""GNU Radio blocks: thin adapters between PDUs/streams and the plain ncsc modules."""

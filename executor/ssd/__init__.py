"""executor.ssd: speculative speculative decoding (Saguaro) with the draft on its own device."""

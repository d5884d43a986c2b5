"""Live events for the frontend: published to Redis after the commit, streamed as SSE."""

"""Live delivery: the WebSocket endpoint, the cross-process bus and what services push after commit."""

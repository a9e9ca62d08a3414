"""What every simulator shares: the Fault type, a loopback ASGI host (TLS and mTLS), a throw-away test CA."""

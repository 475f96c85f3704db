"""Security primitives of the kernel: password hashing and policy, signed tokens, session
revocation, CSRF, and the protocol external log-in providers implement."""

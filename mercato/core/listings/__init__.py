"""Services: developers list packaged offers (gigs), clients browse and buy them, and each
order becomes a contract. Registered as the built-in plugin ``listings``."""

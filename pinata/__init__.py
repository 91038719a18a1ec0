"""pinata: a bounty appliance guarding a secret behind a from-scratch TLS 1.3 engine."""

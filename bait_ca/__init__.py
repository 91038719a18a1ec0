"""The bait's certificate authority: the ceremony whose key nobody can have,
the published toy CA, and the forge of hostile certificates for tests.

Modules: `der` (a tiny DER encoder), `keys` (key types), `build` (certificate
assembly and signing), `ca` (the ceremony and the in-memory CA), `toy_ca`
(the toy CA rebuilt from its published seed), `toy` (the committed toy
credentials and their loader), `forge` (hostile certificates), `wallet`
(the bitcoin key that is the secret), `cli` (`python -m bait_ca`).
"""

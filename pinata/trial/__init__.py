"""`pinata try`: our own engine in the attacker's seat, one port per command.

- 10000: connect as TLS client and present a chain;
- 10001: listen on the connect-back port, knock, serve a chain when the
  piñata dials back;
- 10002: connect and be the TLS server on that connection.

It reports our side's handshake trace, the alert or the secret we got and,
when the appliance answers, its own record of the same connection.
"""

from pinata.trial.play import PORT_ROLES, Attempt, Trial, TrialResult, play

__all__ = ["PORT_ROLES", "Attempt", "Trial", "TrialResult", "play"]

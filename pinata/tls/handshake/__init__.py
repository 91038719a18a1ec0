"""The TLS 1.3 handshake as pure state machines, one per role.

Each state is a frozen dataclass holding exactly what that state needs. The
connection feeds it one parsed message at a time; `handle` returns the next
state and a list of outputs (messages to send, keys to install, the
completion event, trace notes). A message of a type the state does not
`expect` is `unexpected_message` before any handler runs.

States and the values they hold are slotted (`slots=True`): a state is
what a stalled handshake holds for as long as the peer waits, and a
per-instance `__dict__` was a third of some states' size (issue 18).
"""

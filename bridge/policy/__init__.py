"""Pure decisions: no Flask, no SQL, no HTTP. Every function takes ``now`` when time matters."""

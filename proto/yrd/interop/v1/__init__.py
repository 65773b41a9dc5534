"""Generated code for the wire contract ``yrd.interop.v1`` (``make proto`` regenerates it)."""

"""Many hosts: the wire protocol, the host-side agent, the control side's links, and
routing each operator action to the host that runs the session."""

"""Many hosts: one zapvisor driving sessions on several machines over SSH.

The wire protocol, the host-side agent, the control side's links, and routing each
operator action to the host that runs the session; the hosts registry and its rules
(records.py), the SSH layer (connect.py, ssh.py, knownhosts.py), what runs on a host
over it (remote.py, bootstrap.py) and the `hosts` commands' core (admin.py,
status.py). Nothing here imports a UI toolkit.
"""

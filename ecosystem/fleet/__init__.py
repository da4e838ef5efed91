"""The fleet: one zapvisor driving sessions on many hosts over SSH.

The hosts registry and its rules (records.py), the SSH layer (ssh.py, knownhosts.py),
what runs on a host over it (remote.py, bootstrap.py) and the `hosts` commands'
core (admin.py). Nothing here imports a UI toolkit.
"""

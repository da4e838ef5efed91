"""The health monitor: checks every running session, restarts the ones that crash,
hang, bloat or get stuck, parks crash loops and raises alerts.

It runs inside supervisord as an event listener (`python -m ecosystem.health`), so it
works while no UI is open and is itself supervised. The decisions (policy.py,
alerts.py) are pure functions of what was observed and the time; monitor.py applies
them through supervisord's XML-RPC and the store.
"""

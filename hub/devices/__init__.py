"""Devices: presence, commands, retained desired state, alarms and the cabinet fleet."""

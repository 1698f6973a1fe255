"""MQTT: the hub's broker link and its reconnect policy."""

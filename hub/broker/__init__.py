"""The broker side: the project's mosquitto config and accounts, provisioning, embedded broker."""

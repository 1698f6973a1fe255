"""``lockerhub ops``: the operators' gRPC client (tables or ``--json``); imports only lockerhub."""

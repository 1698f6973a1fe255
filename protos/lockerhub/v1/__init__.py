"""Generated protobuf and gRPC code for the lockerhub v1 contract (`make proto`; never edit)."""

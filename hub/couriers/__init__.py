"""Carriers and couriers: the carrier registry and quotas, the courier registry, courier
credentials a cabinet verifies offline, conduct records and the bad-conduct list."""

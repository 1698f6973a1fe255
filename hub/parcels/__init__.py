"""Parcels: announce and allocate, lifecycle, pickup codes, notices, the sweeper, the event feed."""

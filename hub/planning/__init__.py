"""Route planning: the hub's parcels and fleet as a routing problem, solved off the event loop."""

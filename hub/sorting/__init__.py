"""The sorting hub: sort plans sent to lines, screening holds, reusable containers."""

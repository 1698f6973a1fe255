"""The regulator export: a reporting period's outlets, volumes, waybills, returns and incidents."""

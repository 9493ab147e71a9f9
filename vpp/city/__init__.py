"""City mode: district agents and a city coordinator over MQTT 5 (see docs/city.md)."""

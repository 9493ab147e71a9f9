"""vpp: controller for a city swarm power plant."""

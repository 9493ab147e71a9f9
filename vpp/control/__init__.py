"""The control loop: jobs, safety, dispatch and the scheduler that runs them."""

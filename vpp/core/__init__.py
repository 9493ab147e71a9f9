"""The floor every other package stands on: the site schema, the clock and the device-kind
registry.

``adapters``, ``optimizer`` and the application all import from here; nothing here imports
from any of them (a test holds the rule).
"""

"""The parts of ``bench/faults.py``: the rig (``harness``), faults 1-5 and 7
(``scenarios``), fault 6 (``restart``), fault 8 (``readers``) and the figures and table
(``report``)."""

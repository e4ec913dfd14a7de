"""`make bench`: revy side by side with the peers, as ratios to plain Django.

``bench.run`` starts one process per (library, database) pair
(``bench.worker``); each sets up ``bench.project`` with only its library
installed, runs ``bench.scenarios`` and hands back its figures as JSON.
"""

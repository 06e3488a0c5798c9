"""Sweeps: many training runs from one sweep file, resumable, on local workers or a Dask cluster.

One job per module, lower ones first (each imports only those above it in this list):

- ``state``: what a sweep folder records about its points (point states, ``sweep_point.json``);
- ``locks``: one sweep process per folder (the lock, its heartbeat, whether its holder lives);
- ``names``: a point's folder name from its swept values;
- ``parse``: the sweep file's structure, checked, and its axes;
- ``spec``: ``SweepSpec``, the axes expanded into named, validated points;
- ``plan``: which points are left to run, the folder's manifest;
- ``worker``: one point, trained on a worker;
- ``progress``: the status line;
- ``cluster``: where the points run (this process, a local Dask cluster, a scheduler);
- ``report``: results.csv, the table and the plots (``neurosim.report``);
- ``execution``: ``sweep`` (``neurosim.sweep``), one session in order.

The package itself binds no names: ``neurosim.sweep`` and ``neurosim.report`` are the functions.
"""

"""Launching the search where the GPUs are, on top of everything else: ``python -m polyp_ray.slurm``
writes and submits a Slurm batch job (``slurm.py``) whose batch step runs ``job.py``: a Ray head there
(``node.py``), a Ray worker per further task through ``srun``, then the search against that cluster.
Nothing here imports Ray: nodes are ``ray start`` processes, the search is ``python -m polyp_ray.search``.
The Kubernetes manifests are in ``k8s/`` (docs/kubernetes.md)."""

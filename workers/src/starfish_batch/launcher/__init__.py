"""The launcher: what runs on the scientist's machine (``scripts/starfish_workflow.py``).

``cli`` parses and prints; ``runs`` checks and writes a run before any worker starts;
``local`` runs the workers as processes here; ``batch`` submits and follows them on AWS
Batch (from the Terraform outputs, ``tf_outputs``); ``report`` prints the outcome. Nothing in
the worker images imports this package.
"""

"""Run a starfish recipe over every field of view of an experiment, then merge the results."""

# The one place the version is written: the package (pyproject.toml reads it), the Terraform
# module's release tag v<version> (docs/terraform.md ?ref=) and the CHANGELOG follow it.
__version__ = "0.2.0"

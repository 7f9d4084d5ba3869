"""Fixtures of the container e2e tests (opt-in: E2E=1); see containers.py."""

from containers import e2e_state, moto_batch_server, podman_service  # noqa: F401

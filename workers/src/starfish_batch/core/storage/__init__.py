"""Read and write local paths, ``file://`` and ``s3://`` URLs (and read ``https://``), always whole objects.

Every other module goes through here, so that a run behaves the same on a laptop and on
AWS Batch, and a reader never sees half a file: on disk we write a temporary name and
rename it; in S3 an object only appears once its upload completes.

This is the face: callers write ``storage.read_bytes(url)`` and never import the modules
behind it, one idea each: ``urls`` (the URL algebra), ``clients`` (one validated network
configuration, the S3 client and the https session), ``objects`` (whole objects, dispatched
to the ``s3``, ``http`` and ``local`` backends), ``listing``, ``temporaries`` (and their
sweep), ``staging`` (local files published whole), ``failures`` (errors in one line) and
``digest``. A name is bound here once: patching ``storage.X`` changes what callers of the
face see, not the calls between the modules behind it.
"""

from __future__ import annotations

from starfish_batch.core.errors import AlreadyExists, StorageError
from starfish_batch.core.storage.clients import (
    CONNECT_TIMEOUT_VAR,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_TIMEOUT_ATTEMPTS,
    HTTP_RETRY_STATUS,
    MAX_ATTEMPTS_VAR,
    MAX_POOL_CONNECTIONS,
    READ_TIMEOUT_VAR,
    TIMEOUT_ATTEMPTS_VAR,
    NetworkConfig,
    botocore_config,
    http_session,
    max_attempts,
    network_config,
    s3_client,
    timeout_attempts,
    timeouts,
    use_region,
    watch_retries,
)
from starfish_batch.core.storage.digest import HASH_CHUNK, Digest
from starfish_batch.core.storage.failures import NEARLY_FULL_BYTES, no_space_left, write_failure
from starfish_batch.core.storage.listing import list_names, list_objects, list_sizes
from starfish_batch.core.storage.objects import (
    check_writable,
    copy_object,
    create_exclusive,
    delete,
    exists,
    is_dir,
    read_bytes,
    read_tagged,
    read_text,
    replace_if,
    size,
    size_and_etag,
    upload_file,
    write_bytes,
    write_text,
)
from starfish_batch.core.storage.staging import local_copy, staged_output, staged_tree
from starfish_batch.core.storage.temporaries import (
    TEMP_MARK,
    local_temporary,
    pid_alive,
    publish_local,
    sweep_temporaries,
    temporary_for,
)
from starfish_batch.core.storage.urls import absolute, is_http, is_s3, join, parent, split_s3

__all__ = [
    "CONNECT_TIMEOUT_VAR", "DEFAULT_CONNECT_TIMEOUT", "DEFAULT_MAX_ATTEMPTS", "DEFAULT_READ_TIMEOUT",
    "DEFAULT_TIMEOUT_ATTEMPTS", "HASH_CHUNK", "HTTP_RETRY_STATUS", "MAX_ATTEMPTS_VAR", "MAX_POOL_CONNECTIONS",
    "NEARLY_FULL_BYTES", "READ_TIMEOUT_VAR", "TEMP_MARK", "TIMEOUT_ATTEMPTS_VAR",
    "AlreadyExists", "Digest", "NetworkConfig", "StorageError",
    "absolute", "botocore_config", "check_writable", "copy_object", "create_exclusive", "delete", "exists",
    "http_session", "is_dir", "is_http", "is_s3", "join", "list_names", "list_objects", "list_sizes",
    "local_copy", "local_temporary", "max_attempts", "network_config", "no_space_left", "parent", "pid_alive",
    "publish_local", "read_bytes", "read_tagged", "read_text", "replace_if", "s3_client", "size",
    "size_and_etag", "split_s3", "staged_output", "staged_tree", "sweep_temporaries", "temporary_for",
    "timeout_attempts", "timeouts", "upload_file", "use_region", "watch_retries", "write_bytes",
    "write_failure", "write_text",
]

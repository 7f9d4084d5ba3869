data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  # `name` is deprecated (not removed) in provider 6.x in favour of `region`,
  # which 5.x lacks; `name` works on both majors.
  region = data.aws_region.current.name

  name = var.name_prefix

  tags = merge(
    {
      "starfish-batch:module" = "starfish-batch"
      "starfish-batch:name"   = var.name_prefix
    },
    var.tags,
  )

  is_fargate = contains(["FARGATE", "FARGATE_SPOT"], var.compute_type)
  is_ec2     = !local.is_fargate

  ##############################################################################
  # Names
  ##############################################################################

  job_queue_name = "${local.name}-queue"
  log_group_name = "/aws/batch/${local.name}"

  # key = worker (console script, image and job definition suffix)
  workers = {
    "process-fov" = {
      vcpus           = var.process_fov_vcpus
      memory          = var.process_fov_memory
      timeout_seconds = var.process_fov_timeout_seconds
      image_override  = var.process_fov_image
      disk_gib        = null
    }
    "merge-batch-job" = {
      vcpus           = var.merge_vcpus
      memory          = var.merge_memory
      timeout_seconds = var.merge_timeout_seconds
      image_override  = var.merge_image
      disk_gib        = var.merge_ephemeral_storage
    }
  }

  ##############################################################################
  # Network
  ##############################################################################

  create_security_group = length(var.security_group_ids) == 0
  subnet_ids            = length(var.subnet_ids) > 0 ? var.subnet_ids : data.aws_subnets.default[0].ids
  vpc_id = (
    length(var.subnet_ids) > 0 ? one(data.aws_subnet.selected[*].vpc_id) : one(data.aws_vpc.default[*].id)
  )
  security_group_ids = local.create_security_group ? [aws_security_group.batch[0].id] : var.security_group_ids

  ##############################################################################
  # Batch service role: given > created service-linked role > Batch's default
  ##############################################################################

  batch_service_role_arn = (
    var.batch_service_role_arn != null ? var.batch_service_role_arn :
    var.create_batch_service_linked_role ? aws_iam_service_linked_role.batch[0].arn : null
  )

  ##############################################################################
  # S3
  ##############################################################################

  results_bucket_name = (
    var.results_bucket_name != null ? var.results_bucket_name :
    "${local.name}-results-${local.account_id}-${local.region}"
  )
  results_bucket_arn = "arn:${local.partition}:s3:::${local.results_bucket_name}"

  # "s3://bucket/some/prefix/" -> { bucket = "bucket", prefix = "some/prefix" }
  experiment_locations = [
    for l in var.experiment_s3_locations : {
      bucket = split("/", trimsuffix(trimprefix(l, "s3://"), "/"))[0]
      prefix = join("/", slice(
        split("/", trimsuffix(trimprefix(l, "s3://"), "/")), 1,
        length(split("/", trimsuffix(trimprefix(l, "s3://"), "/")))
      ))
    }
  ]
  # One ListBucket statement per location, limited to its prefix.
  experiment_list_statements = {
    for i, e in local.experiment_locations : tostring(i) => {
      bucket_arn = "arn:${local.partition}:s3:::${e.bucket}"
      prefix     = e.prefix
    }
  }
  experiment_object_arns = distinct([
    for e in local.experiment_locations :
    e.prefix == "" ? "arn:${local.partition}:s3:::${e.bucket}/*" : "arn:${local.partition}:s3:::${e.bucket}/${e.prefix}/*"
  ])

  ##############################################################################
  # Fargate: the vCPU/memory pairs it offers
  ##############################################################################

  fargate_memory_by_vcpus = {
    "0.25" = [512, 1024, 2048]
    "0.5"  = [1024, 2048, 3072, 4096]
    "1"    = range(2048, 8193, 1024)
    "2"    = range(4096, 16385, 1024)
    "4"    = range(8192, 30721, 1024)
    "8"    = range(16384, 61441, 4096)
    "16"   = range(32768, 122881, 8192)
  }

  ##############################################################################
  # Retry strategy (at most 5 rules; the catch-all EXIT must come last)
  ##############################################################################

  retry_rules = [
    # Spot reclaim, instance terminated or failed health checks.
    { action = "RETRY", on_status_reason = "Host EC2*", on_reason = null },
    # Image pull, container start and Fargate ENI/registry-auth failures.
    { action = "RETRY", on_status_reason = null, on_reason = "CannotPullContainerError*" },
    { action = "RETRY", on_status_reason = null, on_reason = "CannotStartContainerError*" },
    { action = "RETRY", on_status_reason = null, on_reason = "ResourceInitializationError*" },
    # Everything else, such as the recipe's own failures: do not retry.
    { action = "EXIT", on_status_reason = null, on_reason = "*" },
  ]
}

################################################################################
# starfish-batch: an AWS Batch queue, its compute environments, the two job
# definitions (process-fov, merge-batch-job) that run a starfish recipe over
# every field of view, and their log group. Called as a child module (see
# examples/) or applied at the repository root; it configures no provider of
# its own. Beside it: iam.tf, network.tf, ecr.tf, results.tf, launcher_config.tf
# and migrations.tf (moved blocks).
################################################################################

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

  # Every taggable resource carries these itself (no provider default_tags:
  # the caller's provider is not ours to configure).
  tags = merge(
    {
      "starfish-batch:module" = "starfish-batch"
      "starfish-batch:name"   = var.name_prefix
    },
    var.tags,
  )

  is_fargate = contains(["FARGATE", "FARGATE_SPOT"], var.compute_type)
  is_ec2     = !local.is_fargate

  job_queue_name = "${local.name}-queue"

  # The image each job definition runs: the URI given, else the module's
  # repository and image_tag (create_repositories = false needs the URIs).
  images = {
    for worker, w in local.workers : worker => (
      w.image_override != null ? w.image_override :
      var.create_repositories ? "${aws_ecr_repository.this[worker].repository_url}:${var.image_tag}" : null
    )
  }

  # key = worker (console script, image and job definition suffix)
  workers = {
    "process-fov" = {
      vcpus           = var.process_fov.vcpus
      memory          = var.process_fov.memory
      timeout_seconds = var.process_fov.timeout_seconds
      image_override  = var.process_fov.image
      disk_gib        = null
    }
    "merge-batch-job" = {
      vcpus           = var.merge.vcpus
      memory          = var.merge.memory
      timeout_seconds = var.merge.timeout_seconds
      image_override  = var.merge.image
      disk_gib        = var.merge.ephemeral_storage
    }
  }

  # Fargate: the vCPU/memory pairs it offers.
  fargate_memory_by_vcpus = {
    "0.25" = [512, 1024, 2048]
    "0.5"  = [1024, 2048, 3072, 4096]
    "1"    = range(2048, 8193, 1024)
    "2"    = range(4096, 16385, 1024)
    "4"    = range(8192, 30721, 1024)
    "8"    = range(16384, 61441, 4096)
    "16"   = range(32768, 122881, 8192)
  }

  # Retry strategy: at most 5 rules, the catch-all EXIT last. A job definition
  # runs on one platform, so the one reclaim rule it needs is that platform's:
  # a reclaimed or lost EC2 host ("Host EC2 (instance i-...) terminated."), or
  # a reclaimed Fargate Spot task ("Your Spot Task was interrupted.").
  reclaim_status_reason = local.is_fargate ? "Your Spot Task was interrupted*" : "Host EC2*"
  retry_rules = [
    { action = "RETRY", on_status_reason = local.reclaim_status_reason, on_reason = null },
    # Image pull, container start and Fargate ENI/registry-auth failures.
    { action = "RETRY", on_status_reason = null, on_reason = "CannotPullContainerError*" },
    { action = "RETRY", on_status_reason = null, on_reason = "CannotStartContainerError*" },
    { action = "RETRY", on_status_reason = null, on_reason = "ResourceInitializationError*" },
    # Everything else, such as the recipe's own failures: do not retry.
    { action = "EXIT", on_status_reason = null, on_reason = "*" },
  ]

  # What AWS Batch reports for a job that blocks the head of the queue in
  # RUNNABLE; each gets the same time limit. After it, Batch cancels the job
  # with "Canceled by JobStateTimeLimit action due to reason: <reason>".
  runnable_block_reasons = [
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
    "MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS",
  ]
  runnable_time_limits = var.runnable_time_limit_seconds == null ? [] : local.runnable_block_reasons
}

################################################################################
# Launch template (EC2 / SPOT): IMDSv2 only, encrypted root volume
################################################################################

resource "aws_launch_template" "this" {
  count = local.is_ec2 ? 1 : 0

  name_prefix            = "${local.name}-"
  description            = "Instances of the ${local.name} Batch compute environments"
  update_default_version = true

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
    # 1 keeps job containers (bridge network) away from the instance's
    # credentials; the ECS agent uses the host network, and jobs get their
    # credentials from the job role.
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    # Root device of the ECS-optimized Amazon Linux AMIs Batch uses.
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_size
      volume_type           = "gp3"
      encrypted             = true
      kms_key_id            = var.kms_key_arn
      delete_on_termination = true
    }
  }

  tags = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

################################################################################
# Compute environments: the chosen type, then (Spot) its On-Demand fallback
################################################################################

locals {
  # Spot with a safety net: an On-Demand environment of the same platform,
  # second in the queue's order, takes the jobs Spot capacity cannot.
  fallback_type   = lookup({ SPOT = "EC2", FARGATE_SPOT = "FARGATE" }, var.compute_type, null)
  create_fallback = local.fallback_type != null && var.on_demand_fallback

  # In the queue's order. The keys are the resource's instance keys: renaming
  # one replaces that environment (migrations.tf moves the older addresses).
  compute_environment_list = [
    {
      key       = "primary"
      enabled   = true
      type      = var.compute_type
      min_vcpus = var.min_vcpus
      # EC2 / SPOT only (ignored on Fargate)
      allocation_strategy = var.compute_type == "SPOT" ? var.spot_allocation_strategy : "BEST_FIT_PROGRESSIVE"
      bid_percentage      = var.compute_type == "SPOT" ? var.spot_bid_percentage : null
      instance_name       = "${local.name}-batch"
    },
    {
      key     = "on_demand"
      enabled = local.create_fallback
      type    = local.fallback_type
      # Scales from zero: it only starts instances for jobs Spot cannot place.
      min_vcpus           = 0
      allocation_strategy = "BEST_FIT_PROGRESSIVE"
      bid_percentage      = null
      instance_name       = "${local.name}-batch-on-demand"
    },
  ]
  compute_environments = { for ce in local.compute_environment_list : ce.key => ce if ce.enabled }

  compute_environment_arns = [
    for ce in local.compute_environment_list : aws_batch_compute_environment.this[ce.key].arn if ce.enabled
  ]
}

resource "aws_batch_compute_environment" "this" {
  for_each = local.compute_environments

  # A name from the deployment's, unique (create_before_destroy needs a new
  # name for a replacement). Provider 6.0 renamed this argument to name_prefix:
  # hence the provider's < 6.0 in versions.tf.
  compute_environment_name_prefix = "${local.name}-${lower(each.value.type)}-"

  type         = "MANAGED"
  state        = "ENABLED"
  service_role = local.batch_service_role_arn

  compute_resources {
    type      = each.value.type
    max_vcpus = var.max_vcpus

    subnets            = local.subnet_ids
    security_group_ids = local.security_group_ids

    # EC2 / SPOT only
    min_vcpus           = local.is_ec2 ? each.value.min_vcpus : null
    instance_type       = local.is_ec2 ? var.instance_types : null
    instance_role       = local.is_ec2 ? aws_iam_instance_profile.instance[0].arn : null
    allocation_strategy = local.is_ec2 ? each.value.allocation_strategy : null
    bid_percentage      = each.value.bid_percentage
    # Only what names the instances: any change here replaces the environment,
    # so the module's tags (which change) stay on the environment itself.
    tags = local.is_ec2 ? { Name = each.value.instance_name } : null

    dynamic "launch_template" {
      for_each = local.is_ec2 ? [aws_launch_template.this[0]] : []

      content {
        launch_template_id = launch_template.value.id
        version            = launch_template.value.latest_version
      }
    }
  }

  tags = local.tags

  depends_on = [
    aws_iam_role_policy_attachment.instance_ecs,
    aws_iam_service_linked_role.batch,
  ]

  lifecycle {
    create_before_destroy = true
    # Batch scales desired vCPUs itself.
    ignore_changes = [compute_resources[0].desired_vcpus]

    precondition {
      condition     = local.is_fargate || var.max_vcpus >= each.value.min_vcpus
      error_message = "max_vcpus must be >= min_vcpus."
    }

    precondition {
      condition     = local.network_ok
      error_message = local.network_error
    }
  }
}

################################################################################
# Fair-share scheduling policy (optional)
################################################################################

resource "aws_batch_scheduling_policy" "this" {
  count = var.fair_share_policy != null ? 1 : 0

  name = "${local.name}-fair-share"

  fair_share_policy {
    compute_reservation = var.fair_share_policy.compute_reservation
    share_decay_seconds = var.fair_share_policy.share_decay_seconds

    dynamic "share_distribution" {
      for_each = var.fair_share_policy.share_distribution

      content {
        share_identifier = share_distribution.value.share_identifier
        weight_factor    = share_distribution.value.weight_factor
      }
    }
  }

  tags = local.tags
}

################################################################################
# Job queue: Spot first, On-Demand second; jobs stuck in RUNNABLE are cancelled
################################################################################

resource "aws_batch_job_queue" "this" {
  name                  = local.job_queue_name
  state                 = "ENABLED"
  priority              = 1
  scheduling_policy_arn = one(aws_batch_scheduling_policy.this[*].arn)

  dynamic "compute_environment_order" {
    for_each = local.compute_environment_arns

    content {
      order               = compute_environment_order.key + 1
      compute_environment = compute_environment_order.value
    }
  }

  dynamic "job_state_time_limit_action" {
    for_each = local.runnable_time_limits

    content {
      action           = "CANCEL"
      state            = "RUNNABLE"
      max_time_seconds = var.runnable_time_limit_seconds
      reason           = job_state_time_limit_action.value
    }
  }

  tags = local.tags
}

################################################################################
# CloudWatch log group of the jobs
################################################################################

locals {
  log_group_name = "/aws/batch/${local.name}"
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:A customer-managed key is optional (var.kms_key_arn); CloudWatch Logs encrypts log data at rest by default.
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (default 90 days): job logs are for debugging runs, not an audit trail.
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = local.tags
}

################################################################################
# Job definitions: process-fov and merge-batch-job
################################################################################

resource "aws_batch_job_definition" "this" {
  for_each = local.workers

  name                  = "${local.name}-${each.key}"
  type                  = "container"
  platform_capabilities = [local.is_fargate ? "FARGATE" : "EC2"]
  propagate_tags        = true

  container_properties = jsonencode(merge(
    {
      image      = local.images[each.key]
      command    = [each.key]
      jobRoleArn = aws_iam_role.job.arn
      resourceRequirements = [
        { type = "VCPU", value = tostring(each.value.vcpus) },
        { type = "MEMORY", value = tostring(each.value.memory) },
      ]
      # Static part of the worker contract, plus var.job_environment (sorted
      # by name). RUN_MANIFEST_URL (and a non-zero FOV_INDEX_OFFSET) come
      # from containerOverrides at submit time; Batch sets
      # AWS_BATCH_JOB_ARRAY_INDEX and AWS_BATCH_JOB_ID itself.
      environment = [
        for name, value in merge(var.job_environment, {
          AWS_DEFAULT_REGION = local.region
          FOV_INDEX_OFFSET   = "0"
        }) : { name = name, value = value }
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = aws_cloudwatch_log_group.this.name
          "awslogs-region"        = local.region
          "awslogs-stream-prefix" = each.key
        }
      }
    },
    # Fargate-only properties (an object index: the two sides differ in type).
    {
      fargate = {
        executionRoleArn = one(aws_iam_role.execution[*].arn)
        fargatePlatformConfiguration = {
          platformVersion = "LATEST"
        }
        networkConfiguration = {
          assignPublicIp = var.assign_public_ip ? "ENABLED" : "DISABLED"
        }
      }
      ec2 = {}
    }[local.is_fargate ? "fargate" : "ec2"],
    {
      disk    = { ephemeralStorage = { sizeInGiB = each.value.disk_gib } }
      default = {}
    }[local.is_fargate && each.value.disk_gib != null ? "disk" : "default"]
  ))

  retry_strategy {
    attempts = var.retry_attempts

    dynamic "evaluate_on_exit" {
      for_each = local.retry_rules

      content {
        action           = evaluate_on_exit.value.action
        on_status_reason = evaluate_on_exit.value.on_status_reason
        on_reason        = evaluate_on_exit.value.on_reason
      }
    }
  }

  timeout {
    attempt_duration_seconds = each.value.timeout_seconds
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = local.is_fargate || floor(each.value.vcpus) == each.value.vcpus
      error_message = "On EC2/SPOT the vCPUs of ${each.key} must be a whole number."
    }

    precondition {
      condition = !local.is_fargate || contains(
        lookup(local.fargate_memory_by_vcpus, tostring(each.value.vcpus), []),
        each.value.memory
      )
      error_message = "${each.key}: ${each.value.vcpus} vCPU with ${each.value.memory} MiB is not a Fargate size (see https://docs.aws.amazon.com/batch/latest/userguide/fargate.html)."
    }

    precondition {
      condition     = var.create_results_bucket || var.results_bucket_name != null
      error_message = "results_bucket_name is required when create_results_bucket = false."
    }

    precondition {
      condition     = var.create_repositories || each.value.image_override != null
      error_message = "create_repositories = false: give the ${each.key} image as ${each.key == "process-fov" ? "process_fov" : "merge"}.image (a full image URI)."
    }
  }
}

################################################################################
# Launch template (EC2 / SPOT): IMDSv2 only, encrypted root volume
################################################################################

resource "aws_launch_template" "this" {
  count = local.is_ec2 ? 1 : 0

  name_prefix            = "${local.name}-"
  description            = "Instances of the ${local.name} Batch compute environment"
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

  lifecycle {
    create_before_destroy = true
  }
}

################################################################################
# Compute environment
################################################################################

resource "aws_batch_compute_environment" "this" {
  # No name argument: it was renamed in provider 6.0 (compute_environment_name
  # -> name); both majors generate a unique name when it is left out, which
  # create_before_destroy needs anyway.
  type         = "MANAGED"
  state        = "ENABLED"
  service_role = local.batch_service_role_arn

  compute_resources {
    type      = var.compute_type
    max_vcpus = var.max_vcpus

    subnets            = local.subnet_ids
    security_group_ids = local.security_group_ids

    # EC2 / SPOT only
    min_vcpus           = local.is_ec2 ? var.min_vcpus : null
    instance_type       = local.is_ec2 ? var.instance_types : null
    instance_role       = local.is_ec2 ? aws_iam_instance_profile.instance[0].arn : null
    allocation_strategy = local.is_ec2 ? (var.compute_type == "SPOT" ? var.spot_allocation_strategy : "BEST_FIT_PROGRESSIVE") : null
    bid_percentage      = var.compute_type == "SPOT" ? var.spot_bid_percentage : null
    tags                = local.is_ec2 ? merge(local.tags, { Name = "${local.name}-batch" }) : null

    dynamic "launch_template" {
      for_each = local.is_ec2 ? [aws_launch_template.this[0]] : []

      content {
        launch_template_id = launch_template.value.id
        version            = launch_template.value.latest_version
      }
    }
  }

  depends_on = [
    aws_iam_role_policy_attachment.instance_ecs,
    aws_iam_service_linked_role.batch,
  ]

  lifecycle {
    create_before_destroy = true
    # Batch scales desired vCPUs itself.
    ignore_changes = [compute_resources[0].desired_vcpus]

    precondition {
      condition     = local.is_fargate || var.max_vcpus >= var.min_vcpus
      error_message = "max_vcpus must be >= min_vcpus."
    }
  }
}

################################################################################
# Job queue
################################################################################

resource "aws_batch_job_queue" "this" {
  name     = local.job_queue_name
  state    = "ENABLED"
  priority = 1

  compute_environment_order {
    order               = 1
    compute_environment = aws_batch_compute_environment.this.arn
  }
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
      image      = coalesce(each.value.image_override, "${aws_ecr_repository.this[each.key].repository_url}:${var.image_tag}")
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
  }
}

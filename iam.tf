################################################################################
# Batch service role: given > created service-linked role > Batch's default
################################################################################

locals {
  # IAM names are account-wide: the region (or iam_name_prefix) keeps two
  # deployments of one name in two regions apart.
  iam_name_prefix = coalesce(var.iam_name_prefix, "${local.name}-${local.region}")
  iam_names = {
    instance  = "${local.iam_name_prefix}-instance"
    execution = "${local.iam_name_prefix}-execution"
    job       = "${local.iam_name_prefix}-job"
    submitter = "${local.iam_name_prefix}-submitter"
  }

  batch_service_role_arn = (
    var.batch_service_role_arn != null ? var.batch_service_role_arn :
    var.create_batch_service_linked_role ? aws_iam_service_linked_role.batch[0].arn : null
  )
}

resource "aws_iam_service_linked_role" "batch" {
  count = var.batch_service_role_arn == null && var.create_batch_service_linked_role ? 1 : 0

  aws_service_name = "batch.amazonaws.com"
  description      = "AWS Batch service-linked role (created by starfish-batch)"

  tags = local.tags
}

################################################################################
# EC2 instance role and profile (EC2 / SPOT)
################################################################################

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    sid     = "EC2AssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "instance" {
  count = local.is_ec2 ? 1 : 0

  name                 = local.iam_names.instance
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary
  description          = "ECS container instances of the ${local.name} Batch compute environment"
  assume_role_policy   = data.aws_iam_policy_document.ec2_assume.json

  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "instance_ecs" {
  count = local.is_ec2 ? 1 : 0

  role       = aws_iam_role.instance[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

resource "aws_iam_instance_profile" "instance" {
  count = local.is_ec2 ? 1 : 0

  name = local.iam_names.instance
  path = var.iam_role_path
  role = aws_iam_role.instance[0].name

  tags = local.tags
}

################################################################################
# Task assume-role policy (job role, Fargate execution role)
################################################################################

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    sid     = "ECSTasksAssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

################################################################################
# Fargate execution role: pull the module's images, write the log group
################################################################################

locals {
  # The ECR repositories the jobs' images are in: the module's, and those of
  # image URIs given (ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME[:tag|@digest]).
  # Images of other registries need no ECR permission (public ones) or a
  # registry credential of the platform team's own.
  given_image_repositories = [
    for w in local.workers : regex("^([0-9]{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com(\\.cn)?/([^:@]+)", w.image_override)
    if w.image_override != null && can(regex("^[0-9]{12}\\.dkr\\.ecr\\.", coalesce(w.image_override, "x")))
  ]
  image_repository_arns = distinct(concat(
    [for r in aws_ecr_repository.this : r.arn],
    [for m in local.given_image_repositories : "arn:${local.partition}:ecr:${m[1]}:${m[0]}:repository/${m[3]}"],
  ))
}

resource "aws_iam_role" "execution" {
  count = local.is_fargate ? 1 : 0

  name                 = local.iam_names.execution
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary
  description          = "Fargate execution role of the ${local.name} jobs: pull images, write logs"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = local.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid = "EcrAuthToken"
    # GetAuthorizationToken is account-wide: it has no resource to scope to.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = length(local.image_repository_arns) > 0 ? [1] : []

    content {
      sid = "PullModuleImages"
      actions = [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ]
      resources = local.image_repository_arns
    }
  }

  statement {
    sid       = "WriteJobLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  count = local.is_fargate ? 1 : 0

  name   = "pull-images-write-logs"
  role   = aws_iam_role.execution[0].id
  policy = data.aws_iam_policy_document.execution.json
}

################################################################################
# Reading the experiments: shared by the job role and the submitter policy
################################################################################

locals {
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
}

data "aws_iam_policy_document" "read_experiments" {
  dynamic "statement" {
    for_each = length(local.experiment_locations) > 0 ? [1] : []

    content {
      sid       = "ReadExperiments"
      actions   = ["s3:GetObject"]
      resources = local.experiment_object_arns
    }
  }

  dynamic "statement" {
    for_each = local.experiment_list_statements

    content {
      sid       = "ListExperiments${statement.key}"
      actions   = ["s3:ListBucket"]
      resources = [statement.value.bucket_arn]

      dynamic "condition" {
        for_each = statement.value.prefix == "" ? [] : [statement.value.prefix]

        content {
          test     = "StringLike"
          variable = "s3:prefix"
          values   = [condition.value, "${condition.value}/*"]
        }
      }
    }
  }
}

# The results bucket's KMS key, when it has one: shared by the job role and the submitter policy.
data "aws_iam_policy_document" "results_key" {
  dynamic "statement" {
    for_each = var.kms_key_arn != null ? [1] : []

    content {
      sid       = "UseResultsKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
    }
  }
}

################################################################################
# Job role: read experiments, read/write the results bucket, nothing else
################################################################################

locals {
  # The keys of a run folder that only the launcher writes (starfish_batch.core.contract).
  run_control_keys = ["manifest.json", "manifest-resume-*.json", "recipe.py", "launcher.lock", "jobs.json", "jobs-resume-*.json"]
}

resource "aws_iam_role" "job" {
  name                 = local.iam_names.job
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary
  description          = "Role of the ${local.name} process-fov and merge-batch-job containers"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = local.tags

  lifecycle {
    # Checked at plan time, before anything is created: the region is known then.
    precondition {
      condition     = alltrue([for n in values(local.iam_names) : length(n) <= 64])
      error_message = "IAM role names are at most 64 characters: ${local.iam_names.execution} is ${length(local.iam_names.execution)}; set a shorter iam_name_prefix or name_prefix."
    }
  }
}

data "aws_iam_policy_document" "job" {
  source_policy_documents = [data.aws_iam_policy_document.read_experiments.json, data.aws_iam_policy_document.results_key.json]

  statement {
    sid       = "ListResults"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.results_bucket_arn]
  }

  statement {
    sid = "ReadWriteResults"
    # No DeleteObject: nothing a run wrote is deleted by a later step.
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${local.results_bucket_arn}/*"]
  }

  statement {
    sid = "NeverWriteRunControl"
    # A job writes a run's outputs, never what says what a run runs: its manifests and recipe
    # (and the launcher's claim and jobs files). A recipe in one run can thus not make another
    # scientist's launcher run its code on --resume.
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = [for name in local.run_control_keys : "${local.results_bucket_arn}/*/${name}"]
  }
}

resource "aws_iam_role_policy" "job" {
  name   = "read-experiments-write-results"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job.json
}

################################################################################
# Submitter policy: what a scientist's role needs to launch and follow runs
################################################################################

locals {
  # The tag the launcher puts on every job it submits: the submitter's
  # aws:userid (launcher/batch/jobs.py SUBMITTER_TAG).
  submitter_tag = "starfish-batch:submitter"

  # Where a scientist may write results: their own folder (the default), or, opted out, the
  # whole bucket. The policy variable is written $${aws:userid} so Terraform leaves it to IAM.
  results_caller_prefix = var.results_write_scope == "caller" ? "${trim(var.results_caller_prefix, "/")}/" : null
  submitter_write_arn = (var.results_write_scope == "caller"
    ? "${local.results_bucket_arn}/${local.results_caller_prefix}$${aws:userid}/*"
  : "${local.results_bucket_arn}/*")
  # In their own folder a scientist may also delete (a stale claim, an output to redo).
  submitter_write_actions = (var.results_write_scope == "caller"
    ? ["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"]
  : ["s3:PutObject", "s3:AbortMultipartUpload"])
}

# The submitter's S3 statements on the results bucket, a document of their own: known at plan
# time, so tests evaluate what Terraform renders (tests/adversarial/test_results_scope_iam.py).
data "aws_iam_policy_document" "submitter_results" {
  statement {
    sid       = "ListResults"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.results_bucket_arn]
  }

  statement {
    sid       = "ReadResults"
    actions   = ["s3:GetObject"]
    resources = ["${local.results_bucket_arn}/*"]
  }

  statement {
    # results_write_scope = "caller": only under <results_caller_prefix><the caller's aws:userid>/
    # (what `aws sts get-caller-identity` prints as UserId; the launcher finds it the same way).
    sid       = "WriteOwnResults"
    actions   = local.submitter_write_actions
    resources = [local.submitter_write_arn]
  }
}

data "aws_iam_policy_document" "submitter" {
  # The launcher opens the experiment to list its FOVs before submitting.
  source_policy_documents = [
    data.aws_iam_policy_document.read_experiments.json,
    data.aws_iam_policy_document.results_key.json,
    data.aws_iam_policy_document.submitter_results.json,
  ]

  statement {
    sid     = "SubmitToThisQueue"
    actions = ["batch:SubmitJob"]
    resources = concat(
      [aws_batch_job_queue.this.arn],
      flatten([
        for d in aws_batch_job_definition.this : [d.arn_prefix, "${d.arn_prefix}:*"]
      ]),
    )
    # Every job carries its submitter: the caller's own aws:userid (what
    # `aws sts get-caller-identity` prints as UserId), nobody else's.
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.submitter_tag}"
      values   = ["$${aws:userid}"]
    }
  }

  statement {
    sid     = "TagJobsAtSubmission"
    actions = ["batch:TagResource"]
    # Jobs are tagged (run id, submitter) only as part of SubmitJob, and the
    # submitter tag can only name the caller.
    resources = ["arn:${local.partition}:batch:${local.region}:${local.account_id}:job/*"]
    condition {
      test     = "StringEquals"
      variable = "batch:CreateAction"
      values   = ["SubmitJob"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.submitter_tag}"
      values   = ["$${aws:userid}"]
    }
  }

  statement {
    sid     = "CancelOwnRuns"
    actions = ["batch:CancelJob", "batch:TerminateJob"]
    # Only the jobs this caller submitted: their submitter tag is the caller's
    # aws:userid (for an assumed role, "<role id>:<session name>").
    resources = ["arn:${local.partition}:batch:${local.region}:${local.account_id}:job/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.submitter_tag}"
      values   = ["$${aws:userid}"]
    }
  }

  statement {
    sid = "FollowJobs"
    # Batch's Describe*/List* calls accept no resource-level restriction.
    actions = [
      "batch:DescribeJobs",
      "batch:ListJobs",
      "batch:DescribeJobQueues",
      "batch:DescribeJobDefinitions",
      "batch:DescribeComputeEnvironments",
    ]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.create_ssm_parameter ? [1] : []

    content {
      sid       = "ReadLauncherConfig"
      actions   = ["ssm:GetParameter"]
      resources = [local.ssm_parameter_arn]
    }
  }

  statement {
    sid = "ReadJobLogs"
    actions = [
      "logs:DescribeLogStreams",
      "logs:FilterLogEvents",
      "logs:GetLogEvents",
    ]
    resources = [
      aws_cloudwatch_log_group.this.arn,
      "${aws_cloudwatch_log_group.this.arn}:*",
    ]
  }
}

resource "aws_iam_policy" "submitter" {
  name        = local.iam_names.submitter
  path        = var.iam_role_path
  description = "Submit and follow starfish-batch runs on the ${local.job_queue_name} queue; read/write its results bucket and logs"
  policy      = data.aws_iam_policy_document.submitter.json

  tags = local.tags
}

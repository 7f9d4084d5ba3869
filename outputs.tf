################################################################################
# The launcher's config: all a caller needs to re-export (and, by default, the
# same document in the SSM parameter config_parameter_name)
################################################################################

output "launcher_config" {
  description = "Everything the launcher needs, in one object: re-export this one output (starfish_workflow.py --tf-dir / --tf-outputs read it), or let scientists read the same JSON from the SSM parameter config_parameter_name (--deployment NAME / --config-parameter NAME)."
  value       = local.launcher_config
}

output "config_parameter_name" {
  description = "Name of the SSM parameter holding launcher_config as JSON (readable with the submitter policy); null with create_ssm_parameter = false."
  value       = var.create_ssm_parameter ? aws_ssm_parameter.launcher_config[0].name : null
}

################################################################################
# Contract outputs (also inside launcher_config; kept for stacks that use them)
################################################################################

output "region" {
  description = "AWS region of the queue, bucket and logs."
  value       = local.region
}

output "job_queue_arn" {
  description = "ARN of the Batch job queue runs are submitted to."
  value       = aws_batch_job_queue.this.arn
}

output "process_fov_job_definition_arn" {
  description = "ARN (with revision) of the process-fov job definition: the array job, one child per field of view."
  value       = aws_batch_job_definition.this["process-fov"].arn
}

output "merge_job_definition_arn" {
  description = "ARN (with revision) of the merge-batch-job job definition: the job that merges every FOV's table."
  value       = aws_batch_job_definition.this["merge-batch-job"].arn
}

output "results_bucket" {
  description = "Name of the S3 bucket runs write their results to (created, or the existing one given)."
  value       = var.create_results_bucket ? aws_s3_bucket.results[0].id : local.results_bucket_name
}

output "log_group_name" {
  description = "CloudWatch log group the jobs' containers log to (stream prefix = worker name)."
  value       = aws_cloudwatch_log_group.this.name
}

output "process_fov_repository_url" {
  description = "URL of the ECR repository of the process-fov image (push <url>:<image_tag>); null with create_repositories = false."
  value       = try(aws_ecr_repository.this["process-fov"].repository_url, null)
}

output "merge_repository_url" {
  description = "URL of the ECR repository of the merge-batch-job image (push <url>:<image_tag>); null with create_repositories = false."
  value       = try(aws_ecr_repository.this["merge-batch-job"].repository_url, null)
}

output "submitter_policy_arn" {
  description = "ARN of the managed policy to attach to a scientist's role: submit and follow runs on this queue, read/write the results bucket, read the logs."
  value       = aws_iam_policy.submitter.arn
}

################################################################################
# Extra outputs
################################################################################

output "job_queue_name" {
  description = "Name of the Batch job queue."
  value       = aws_batch_job_queue.this.name
}

output "process_fov_job_definition_name" {
  description = "Name of the process-fov job definition (submitting by name runs its latest revision)."
  value       = aws_batch_job_definition.this["process-fov"].name
}

output "merge_job_definition_name" {
  description = "Name of the merge-batch-job job definition."
  value       = aws_batch_job_definition.this["merge-batch-job"].name
}

output "process_fov_image" {
  description = "Image URI the process-fov job definition runs."
  value       = local.images["process-fov"]
}

output "merge_image" {
  description = "Image URI the merge-batch-job job definition runs."
  value       = local.images["merge-batch-job"]
}

output "image_tag" {
  description = "Image tag the job definitions use with the module's repositories."
  value       = var.image_tag
}

output "compute_environment_arn" {
  description = "ARN of the Batch compute environment of compute_type (the first in the queue's order)."
  value       = aws_batch_compute_environment.this["primary"].arn
}

output "compute_type" {
  description = "Compute environment type (EC2, SPOT, FARGATE or FARGATE_SPOT)."
  value       = var.compute_type
}

output "job_role_arn" {
  description = "ARN of the IAM role the job containers run as."
  value       = aws_iam_role.job.arn
}

output "results_caller_prefix" {
  description = "Prefix of the scientists' own folders in the results bucket (\"users/\"): the launcher writes a scientist's runs under <prefix><aws:userid>/. Null when results_write_scope = \"bucket\"."
  value       = local.results_caller_prefix
}

output "results_bucket_arn" {
  description = "ARN of the results bucket."
  value       = local.results_bucket_arn
}

output "compute_environment_arns" {
  description = "ARNs of the queue's compute environments in the queue's order: the chosen type first, then (SPOT and FARGATE_SPOT with on_demand_fallback) its On-Demand fallback."
  value       = local.compute_environment_arns
}

output "share_identifier" {
  description = "Share identifier the launcher submits jobs with when the queue has a fair-share policy (fair_share_policy); null without one."
  value       = var.fair_share_policy == null ? null : var.fair_share_policy.share_identifier
}

output "submitter_tag" {
  description = "Tag key the launcher sets on every job to the submitter's aws:userid; the submitter policy lets a caller cancel only jobs whose tag is their own aws:userid."
  value       = local.submitter_tag
}

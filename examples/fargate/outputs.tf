# What the launcher (starfish_workflow.py --tf-dir examples/<this example>) and
# `make push TF_DIR=examples/<this example>` read: the module's outputs,
# re-exported from this root module.

output "region" {
  description = "AWS region of the queue, bucket and logs."
  value       = module.starfish_batch.region
}

output "job_queue_arn" {
  description = "ARN of the Batch job queue runs are submitted to."
  value       = module.starfish_batch.job_queue_arn
}

output "process_fov_job_definition_arn" {
  description = "ARN of the process-fov job definition."
  value       = module.starfish_batch.process_fov_job_definition_arn
}

output "merge_job_definition_arn" {
  description = "ARN of the merge-batch-job job definition."
  value       = module.starfish_batch.merge_job_definition_arn
}

output "results_bucket" {
  description = "S3 bucket runs write their results to."
  value       = module.starfish_batch.results_bucket
}

output "log_group_name" {
  description = "CloudWatch log group of the jobs."
  value       = module.starfish_batch.log_group_name
}

output "process_fov_repository_url" {
  description = "ECR repository of the process-fov image."
  value       = module.starfish_batch.process_fov_repository_url
}

output "merge_repository_url" {
  description = "ECR repository of the merge-batch-job image."
  value       = module.starfish_batch.merge_repository_url
}

output "submitter_policy_arn" {
  description = "Managed policy to attach to the scientists' role."
  value       = module.starfish_batch.submitter_policy_arn
}

output "image_tag" {
  description = "Image tag the job definitions use."
  value       = module.starfish_batch.image_tag
}

output "share_identifier" {
  description = "Share identifier of the queue's fair-share policy (null without one)."
  value       = module.starfish_batch.share_identifier
}

output "compute_environment_arns" {
  description = "The queue's compute environments, in order."
  value       = module.starfish_batch.compute_environment_arns
}

################################################################################
# launcher_config: everything the launcher needs, in one object (an output)
# and, by default, in an SSM parameter the submitter policy may read, so that
# scientists need no access to the Terraform state.
################################################################################

locals {
  ssm_parameter_name = coalesce(var.ssm_parameter_name, "/starfish-batch/${local.name}/launcher-config")
  ssm_parameter_arn = (
    "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter/${trimprefix(local.ssm_parameter_name, "/")}"
  )

  # Read by the launcher (starfish_batch/launcher/tf_outputs.py) and by
  # `make push`; "schema" changes only when a key changes meaning.
  launcher_config = {
    schema                         = 1
    name                           = local.name
    region                         = local.region
    job_queue_arn                  = aws_batch_job_queue.this.arn
    job_queue_name                 = aws_batch_job_queue.this.name
    process_fov_job_definition_arn = aws_batch_job_definition.this["process-fov"].arn
    merge_job_definition_arn       = aws_batch_job_definition.this["merge-batch-job"].arn
    results_bucket                 = var.create_results_bucket ? aws_s3_bucket.results[0].id : local.results_bucket_name
    results_caller_prefix          = local.results_caller_prefix
    log_group_name                 = aws_cloudwatch_log_group.this.name
    process_fov_image              = local.images["process-fov"]
    merge_image                    = local.images["merge-batch-job"]
    process_fov_repository_url     = try(aws_ecr_repository.this["process-fov"].repository_url, null)
    merge_repository_url           = try(aws_ecr_repository.this["merge-batch-job"].repository_url, null)
    image_tag                      = var.image_tag
    submitter_policy_arn           = aws_iam_policy.submitter.arn
    compute_type                   = var.compute_type
    compute_environment_arn        = aws_batch_compute_environment.this["primary"].arn
    compute_environment_arns       = local.compute_environment_arns
    share_identifier               = var.fair_share_policy == null ? null : var.fair_share_policy.share_identifier
    submitter_tag                  = local.submitter_tag
    config_parameter_name          = var.create_ssm_parameter ? local.ssm_parameter_name : null
  }
}

resource "aws_ssm_parameter" "launcher_config" {
  count = var.create_ssm_parameter ? 1 : 0

  #checkov:skip=CKV2_AWS_34:Not a secret: ARNs and names the submitter policy already reveals; a String lets the scientists read it without a KMS grant.
  name        = local.ssm_parameter_name
  description = "starfish-batch ${local.name}: what the launcher needs (starfish_workflow.py --deployment ${local.name})"
  type        = "String"
  tier        = "Standard"
  value       = jsonencode(local.launcher_config)

  tags = local.tags

  lifecycle {
    precondition {
      condition     = length(jsonencode(local.launcher_config)) <= 4096
      error_message = "launcher_config is longer than a Standard SSM parameter holds (4 KB): use a shorter name_prefix, or create_ssm_parameter = false."
    }
  }
}

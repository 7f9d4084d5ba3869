# All the launcher (starfish_workflow.py --tf-dir examples/<this example>) and
# `make push TF_DIR=examples/<this example>` read is launcher_config; scientists
# without access to this state read the same JSON from the SSM parameter
# (starfish_workflow.py --deployment <name_prefix>).

output "launcher_config" {
  description = "Everything the launcher needs (also in the SSM parameter config_parameter_name)."
  value       = module.starfish_batch.launcher_config
}

output "config_parameter_name" {
  description = "SSM parameter holding launcher_config: what scientists' --config-parameter names."
  value       = module.starfish_batch.config_parameter_name
}

output "submitter_policy_arn" {
  description = "Managed policy to attach to the scientists' role."
  value       = module.starfish_batch.submitter_policy_arn
}

# As in the other examples: launcher_config is all the launcher reads, and the
# SSM parameter holds the same JSON for scientists without access to this state.

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

output "vpc_endpoint_ids" {
  description = "The VPC endpoints the jobs use instead of a NAT gateway."
  value       = merge({ s3 = aws_vpc_endpoint.s3.id }, { for k, e in aws_vpc_endpoint.interface : k => e.id })
}

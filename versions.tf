# No provider block: the caller configures the aws provider (region,
# credentials, assume_role, aliases) and passes it in, so the module can be
# called with count, for_each, depends_on and `providers = { aws = aws.x }`.
# Applied at the repository root, Terraform's default aws provider takes the
# region and credentials from the environment (AWS_REGION, AWS_PROFILE, ...).
terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Tested with 5.100.0. Below 6.0: the compute environments are named
      # with compute_environment_name_prefix, which 6.0 renamed name_prefix.
      version = ">= 5.100, < 6.0"
    }
  }
}

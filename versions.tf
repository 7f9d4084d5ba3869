terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Tested with 5.100.0. Nothing here uses what 6.0 renamed or added
      # (no compute_environment_name, no resource-level region).
      version = ">= 5.100, < 7.0"
    }
  }
}

# The module is applied at the repository root by platform teams, so it
# configures its own provider. With var.region = null the region comes from
# the environment (AWS_REGION, AWS_PROFILE, ...). Tags reach every resource
# through default_tags.
provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

################################################################################
# Subnets: given, or (said explicitly) the default VPC's
################################################################################

locals {
  create_security_group = length(var.security_group_ids) == 0
  subnet_ids            = var.use_default_vpc ? data.aws_subnets.default[0].ids : var.subnet_ids
  vpc_id = (
    var.use_default_vpc ? one(data.aws_vpc.default[*].id) : one(data.aws_subnet.selected[*].vpc_id)
  )
  security_group_ids = local.create_security_group ? [aws_security_group.batch[0].id] : var.security_group_ids

  # Checked before anything is created (preconditions of the security group and the
  # compute environments): the default VPC is never a silent fallback.
  network_ok = var.use_default_vpc != (length(var.subnet_ids) > 0)
  network_error = (
    var.use_default_vpc ? "Give subnet_ids or use_default_vpc = true, not both." :
    "subnet_ids is required (the jobs' subnets); use_default_vpc = true runs them in the default VPC's public subnets instead (a trial, not production)."
  )
  # Egress of the created security group: somewhere to reach on 443.
  egress_ok = length(var.egress_cidr_blocks) + length(var.egress_prefix_list_ids) + length(var.egress_security_group_ids) > 0
}

data "aws_vpc" "default" {
  count = var.use_default_vpc ? 1 : 0

  default = true
}

data "aws_subnets" "default" {
  count = var.use_default_vpc ? 1 : 0

  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default[0].id]
  }
}

data "aws_subnet" "selected" {
  count = !var.use_default_vpc && length(var.subnet_ids) > 0 && length(var.security_group_ids) == 0 ? 1 : 0

  id = var.subnet_ids[0]
}

################################################################################
# Security group: no ingress, HTTPS egress only (to the ranges, prefix lists
# and security groups given: everywhere by default, or only VPC endpoints)
################################################################################

resource "aws_security_group" "batch" {
  count = local.create_security_group ? 1 : 0

  name_prefix = "${local.name}-batch-"
  description = "starfish-batch jobs: no ingress; HTTPS egress to ECR, S3, CloudWatch Logs and experiments"
  vpc_id      = local.vpc_id

  egress {
    description     = "HTTPS to AWS APIs (or their VPC endpoints) and experiments"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    cidr_blocks     = var.egress_cidr_blocks
    prefix_list_ids = var.egress_prefix_list_ids
    security_groups = var.egress_security_group_ids
  }

  tags = merge(local.tags, { Name = "${local.name}-batch" })

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = local.network_ok
      error_message = local.network_error
    }

    precondition {
      condition     = local.egress_ok
      error_message = "The created security group needs somewhere to reach on 443: egress_cidr_blocks, egress_prefix_list_ids or egress_security_group_ids."
    }
  }
}

################################################################################
# Subnets: given, or the default VPC's
################################################################################

locals {
  create_security_group = length(var.security_group_ids) == 0
  subnet_ids            = length(var.subnet_ids) > 0 ? var.subnet_ids : data.aws_subnets.default[0].ids
  vpc_id = (
    length(var.subnet_ids) > 0 ? one(data.aws_subnet.selected[*].vpc_id) : one(data.aws_vpc.default[*].id)
  )
  security_group_ids = local.create_security_group ? [aws_security_group.batch[0].id] : var.security_group_ids
}

data "aws_vpc" "default" {
  count = length(var.subnet_ids) == 0 ? 1 : 0

  default = true
}

data "aws_subnets" "default" {
  count = length(var.subnet_ids) == 0 ? 1 : 0

  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default[0].id]
  }
}

data "aws_subnet" "selected" {
  count = length(var.subnet_ids) > 0 && length(var.security_group_ids) == 0 ? 1 : 0

  id = var.subnet_ids[0]
}

################################################################################
# Security group: no ingress, HTTPS egress only
################################################################################

resource "aws_security_group" "batch" {
  count = local.create_security_group ? 1 : 0

  name_prefix = "${local.name}-batch-"
  description = "starfish-batch jobs: no ingress; HTTPS egress to ECR, S3, CloudWatch Logs and experiments"
  vpc_id      = local.vpc_id

  egress {
    description = "HTTPS to AWS APIs and experiments"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.egress_cidr_blocks
  }

  tags = merge(local.tags, { Name = "${local.name}-batch" })

  lifecycle {
    create_before_destroy = true
  }
}

# Private subnets with no NAT gateway (the usual production layout): the jobs
# reach AWS through VPC endpoints only, and their security group lets them
# reach nothing else.
#
#   S3 (gateway)            the experiment and results buckets, and ECR's image layers
#   ecr.api, ecr.dkr        pulling the worker images
#   logs                    the jobs' CloudWatch logs
#   ecs, ecs-agent,         EC2/SPOT only: the ECS container agent on each instance
#   ecs-telemetry
#
# Experiments must then be in S3: an https:// experiment on the internet is
# out of reach without a NAT gateway or a proxy (job_environment HTTPS_PROXY).
#
#   cd examples/private-subnets && terraform init && terraform apply
#
# In your own stack, give your VPC's private subnets and route tables instead
# of the VPC made here; the endpoints and the module call stay the same.

provider "aws" {
  region = var.region
}

data "aws_region" "current" {}

locals {
  name   = "starfish-private"
  region = data.aws_region.current.name
  azs    = [for suffix in var.availability_zone_suffixes : "${data.aws_region.current.name}${suffix}"]
  is_ec2 = contains(["EC2", "SPOT"], var.compute_type)

  # Interface endpoints: every job needs ECR and CloudWatch Logs; EC2/SPOT
  # instances also run the ECS agent.
  interface_endpoints = concat(
    ["ecr.api", "ecr.dkr", "logs"],
    local.is_ec2 ? ["ecs", "ecs-agent", "ecs-telemetry"] : [],
  )
  tags = { team = "imaging-platform" }
}

################################################################################
# A VPC with two private subnets: no internet gateway, no NAT gateway
################################################################################

resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:Flow logs are the platform team's choice (a log group or bucket of theirs); this example adds none.
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true # the interface endpoints' private DNS names
  enable_dns_hostnames = true

  tags = merge(local.tags, { Name = local.name })
}

# The VPC's default security group: no rule at all.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(local.tags, { Name = "${local.name}-default" })
}

resource "aws_subnet" "private" {
  count = length(local.azs)

  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, count.index)

  tags = merge(local.tags, { Name = "${local.name}-private-${local.azs[count.index]}" })
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id

  tags = merge(local.tags, { Name = "${local.name}-private" })
}

resource "aws_route_table_association" "private" {
  count = length(aws_subnet.private)

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

################################################################################
# VPC endpoints
################################################################################

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id]

  tags = merge(local.tags, { Name = "${local.name}-s3" })
}

resource "aws_security_group" "endpoints" {
  name_prefix = "${local.name}-endpoints-"
  description = "Interface VPC endpoints of starfish-batch: HTTPS from the VPC only"
  vpc_id      = aws_vpc.this.id

  ingress {
    description = "HTTPS from the VPC (the jobs and the instances)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  tags = merge(local.tags, { Name = "${local.name}-endpoints" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_endpoint" "interface" {
  for_each = toset(local.interface_endpoints)

  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true

  tags = merge(local.tags, { Name = "${local.name}-${each.key}" })
}

################################################################################
# The module: in those subnets, egress to the endpoints only
################################################################################

module "starfish_batch" {
  source = "../.."

  name_prefix  = local.name
  compute_type = var.compute_type
  max_vcpus    = 256

  subnet_ids       = aws_subnet.private[*].id
  assign_public_ip = false # private subnets: the endpoints are reached privately
  # Egress on 443 to the S3 gateway endpoint's prefix list and the interface
  # endpoints' security group, nowhere else.
  egress_cidr_blocks        = []
  egress_prefix_list_ids    = [aws_vpc_endpoint.s3.prefix_list_id]
  egress_security_group_ids = [aws_security_group.endpoints.id]

  process_fov = {
    vcpus  = 1
    memory = 4096
  }
  merge = {
    vcpus  = 2
    memory = 4096
  }

  experiment_s3_locations = ["s3://spacetx-experiments/iss/"]

  tags = local.tags
}

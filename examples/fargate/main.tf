# Fargate: no instances to manage; each job gets exactly its vCPUs/memory.
# Sizes must be pairs Fargate offers (1 vCPU: 2048-8192 MiB, 2 vCPU:
# 4096-16384 MiB, 4 vCPU: 8192-30720 MiB, ...). FARGATE_SPOT runs on Spot,
# with FARGATE second in the queue's order.
#
#   cd examples/fargate && terraform init && terraform apply
#   starfish_workflow.py --executor batch --tf-dir examples/fargate ...

provider "aws" {
  region = var.region
}

module "starfish_batch" {
  source = "../.."

  name_prefix  = "starfish-fargate"
  compute_type = "FARGATE"
  max_vcpus    = 256

  # The default VPC's public subnets: a trial. In production give subnet_ids
  # (see examples/private-subnets: private subnets, VPC endpoints, no NAT).
  use_default_vpc = true

  process_fov = {
    vcpus  = 1
    memory = 4096
  }
  merge = {
    vcpus  = 2
    memory = 4096
    # local disk for the merged table before its upload (Fargate's default: 20 GiB)
    ephemeral_storage = 50
  }

  # The default VPC's subnets are public: jobs need a public IP to pull images.
  # In private subnets with a NAT gateway or VPC endpoints, set it to false and
  # give subnet_ids / security_group_ids.
  assign_public_ip = true

  experiment_s3_locations = ["s3://spacetx-experiments/iss/"]

  tags = {
    team = "imaging-platform"
  }
}

# Spot instances: up to ~70-90% cheaper. A reclaimed instance fails its jobs
# with "Host EC2 ..." and the job definitions retry them (retry_attempts).
# An On-Demand environment second in the queue's order takes the jobs Spot
# capacity cannot place (on_demand_fallback = false turns it off).
#
#   cd examples/spot && terraform init && terraform apply
#   starfish_workflow.py --executor batch --tf-dir examples/spot ...

provider "aws" {
  region = var.region
}

module "starfish_batch" {
  source = "../.."

  name_prefix              = "starfish-spot"
  compute_type             = "SPOT"
  instance_types           = ["c6i", "c5", "m6i", "m5", "r6i"]
  spot_allocation_strategy = "SPOT_PRICE_CAPACITY_OPTIMIZED"
  spot_bid_percentage      = 100
  on_demand_fallback       = true
  min_vcpus                = 0
  max_vcpus                = 512

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
  }
  # Spot reclaims are retried: give them room.
  retry_attempts = 5

  experiment_s3_locations = ["s3://spacetx-experiments"]

  tags = {
    team = "imaging-platform"
  }
}

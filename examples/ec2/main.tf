# On-demand EC2 instances: the steadiest choice; pays On-Demand prices.
#
#   cd examples/ec2 && terraform init && terraform apply
#   starfish_workflow.py --executor batch --tf-dir examples/ec2 ...
#
# In your own stack: copy this file, set `source` to where the module lives
# (a git URL such as "git::https://.../starfish-batch.git?ref=v0.2.0").

provider "aws" {
  region = var.region
}

module "starfish_batch" {
  source = "../.."

  name_prefix    = "starfish-batch"
  compute_type   = "EC2"
  instance_types = ["c6i", "m6i"]
  min_vcpus      = 0
  max_vcpus      = 128

  # The default VPC's public subnets: a trial. In production give subnet_ids
  # (see examples/private-subnets: private subnets, VPC endpoints, no NAT).
  use_default_vpc = true

  process_fov = {
    vcpus  = 2
    memory = 4096
  }
  merge = {
    vcpus           = 2
    memory          = 4096
    timeout_seconds = 7200
  }
  retry_attempts = 2

  # Cancel a job that cannot start for 4 hours (no capacity, or no instance
  # type that holds its memory); the launcher prints AWS's reason.
  runnable_time_limit_seconds = 14400

  # Experiments the jobs may read (the results bucket is always readable).
  experiment_s3_locations = ["s3://spacetx-experiments/iss"]
  log_retention_days      = 90

  tags = {
    team = "imaging-platform"
  }
}

# On-demand EC2 instances: the steadiest choice; pays On-Demand prices.
# terraform apply -var-file=examples/terraform/ec2.tfvars
name_prefix    = "starfish-batch"
compute_type   = "EC2"
instance_types = ["c6i", "m6i"]
min_vcpus      = 0
max_vcpus      = 128

process_fov_vcpus  = 2
process_fov_memory = 4096
merge_vcpus        = 2
merge_memory       = 4096

retry_attempts              = 2
process_fov_timeout_seconds = 3600
merge_timeout_seconds       = 7200

image_tag = "latest"

# Experiments the jobs may read (the results bucket is always readable).
experiment_s3_locations = ["s3://spacetx-experiments/iss"]

log_retention_days = 90

tags = {
  team = "imaging-platform"
}

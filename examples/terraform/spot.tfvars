# Spot instances: up to ~70-90% cheaper. A reclaimed instance fails its jobs
# with "Host EC2 ..." and the job definitions retry them (retry_attempts).
# terraform apply -var-file=examples/terraform/spot.tfvars
name_prefix              = "starfish-spot"
compute_type             = "SPOT"
instance_types           = ["c6i", "c5", "m6i", "m5", "r6i"]
spot_allocation_strategy = "SPOT_PRICE_CAPACITY_OPTIMIZED"
spot_bid_percentage      = 100
min_vcpus                = 0
max_vcpus                = 512

process_fov_vcpus  = 1
process_fov_memory = 4096
merge_vcpus        = 2
merge_memory       = 4096

# Spot reclaims are retried: give them room.
retry_attempts = 5

experiment_s3_locations = ["s3://spacetx-experiments"]

tags = {
  team = "imaging-platform"
}

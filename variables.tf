################################################################################
# General
################################################################################

variable "region" {
  description = "AWS region to deploy into. null uses the provider's usual sources (AWS_REGION, AWS_DEFAULT_REGION, the profile)."
  type        = string
  default     = null

  validation {
    condition     = var.region == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must look like \"us-east-1\"."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (queue, job definitions, roles, repositories, bucket, log group). Lower-case letters, digits and hyphens, 3 to 24 characters."
  type        = string
  default     = "starfish-batch"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3 to 24 characters of [a-z0-9-], start with a letter and not end with a hyphen."
  }
}

variable "tags" {
  description = "Tags applied to every resource (through the provider's default_tags) and to the EC2 instances Batch starts."
  type        = map(string)
  default     = {}
}

################################################################################
# Compute environment
################################################################################

variable "compute_type" {
  description = "Compute environment type: EC2 (on-demand instances), SPOT, FARGATE or FARGATE_SPOT."
  type        = string
  default     = "EC2"

  validation {
    condition     = contains(["EC2", "SPOT", "FARGATE", "FARGATE_SPOT"], var.compute_type)
    error_message = "compute_type must be one of EC2, SPOT, FARGATE, FARGATE_SPOT."
  }
}

variable "instance_types" {
  description = "EC2 instance types or families Batch may start (EC2 and SPOT only). \"optimal\" lets Batch choose from the C, M and R families."
  type        = list(string)
  default     = ["optimal"]

  validation {
    condition     = length(var.instance_types) > 0 && alltrue([for t in var.instance_types : can(regex("^[a-z0-9][a-z0-9.-]*$", t))])
    error_message = "instance_types must be a non-empty list of instance types or families such as \"optimal\", \"c6i\" or \"m6i.xlarge\"."
  }
}

variable "min_vcpus" {
  description = "Minimum vCPUs the compute environment keeps running (EC2 and SPOT only). 0 scales to zero when the queue is empty."
  type        = number
  default     = 0

  validation {
    condition     = var.min_vcpus >= 0 && floor(var.min_vcpus) == var.min_vcpus
    error_message = "min_vcpus must be a whole number >= 0."
  }
}

variable "max_vcpus" {
  description = "Maximum vCPUs of the compute environment: how many FOVs run at once is about max_vcpus / process_fov_vcpus."
  type        = number
  default     = 256

  validation {
    condition     = var.max_vcpus >= 1 && floor(var.max_vcpus) == var.max_vcpus
    error_message = "max_vcpus must be a whole number >= 1."
  }
}

variable "spot_allocation_strategy" {
  description = "Allocation strategy of a SPOT compute environment. BEST_FIT is not offered: it needs a Spot Fleet role."
  type        = string
  default     = "SPOT_PRICE_CAPACITY_OPTIMIZED"

  validation {
    condition     = contains(["SPOT_PRICE_CAPACITY_OPTIMIZED", "SPOT_CAPACITY_OPTIMIZED", "BEST_FIT_PROGRESSIVE"], var.spot_allocation_strategy)
    error_message = "spot_allocation_strategy must be SPOT_PRICE_CAPACITY_OPTIMIZED, SPOT_CAPACITY_OPTIMIZED or BEST_FIT_PROGRESSIVE."
  }
}

variable "spot_bid_percentage" {
  description = "Highest Spot price, as a percentage of the On-Demand price, that a SPOT environment pays."
  type        = number
  default     = 100

  validation {
    condition     = var.spot_bid_percentage >= 1 && var.spot_bid_percentage <= 100
    error_message = "spot_bid_percentage must be between 1 and 100."
  }
}

variable "root_volume_size" {
  description = "Size in GiB of the encrypted gp3 root volume of the EC2/SPOT instances (it holds the images and the job's scratch space)."
  type        = number
  default     = 50

  validation {
    condition     = var.root_volume_size >= 30 && var.root_volume_size <= 16384
    error_message = "root_volume_size must be between 30 and 16384 GiB."
  }
}

variable "subnet_ids" {
  description = "Subnets of the compute environment. Empty uses the subnets of the default VPC. Fargate jobs in private subnets need a NAT gateway or VPC endpoints for ECR, S3 and CloudWatch Logs."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "subnet_ids must be subnet ids (subnet-...)."
  }
}

variable "security_group_ids" {
  description = "Security groups of the compute environment. Empty creates one that allows no ingress and HTTPS egress only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.security_group_ids : can(regex("^sg-[0-9a-f]+$", s))])
    error_message = "security_group_ids must be security group ids (sg-...)."
  }
}

variable "egress_cidr_blocks" {
  description = "IPv4 ranges the created security group lets jobs reach on TCP 443 (ECR, S3, CloudWatch Logs, HTTPS experiments)."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.egress_cidr_blocks) > 0 && alltrue([for c in var.egress_cidr_blocks : can(cidrhost(c, 0))])
    error_message = "egress_cidr_blocks must be a non-empty list of IPv4 CIDR blocks."
  }
}

variable "assign_public_ip" {
  description = "Give Fargate jobs a public IP. Needed in public subnets without a NAT gateway (such as the default VPC's) to pull images."
  type        = bool
  default     = true
}

variable "batch_service_role_arn" {
  description = "IAM role AWS Batch uses to manage the compute environment. null (the default) lets Batch use its service-linked role AWSServiceRoleForBatch, which AWS creates on first use."
  type        = string
  default     = null

  validation {
    condition     = var.batch_service_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.batch_service_role_arn))
    error_message = "batch_service_role_arn must be an IAM role ARN."
  }
}

variable "create_batch_service_linked_role" {
  description = "Create the service-linked role AWSServiceRoleForBatch and name it as the service role. Only one can exist per account: leave false where it exists already (AWS creates it on first use). Ignored when batch_service_role_arn is set."
  type        = bool
  default     = false
}

################################################################################
# Jobs
################################################################################

variable "process_fov_vcpus" {
  description = "vCPUs of each process-fov job (one field of view). With Fargate, a value Fargate offers: 0.25, 0.5, 1, 2, 4, 8 or 16."
  type        = number
  default     = 1

  validation {
    condition     = var.process_fov_vcpus > 0 && var.process_fov_vcpus <= 192
    error_message = "process_fov_vcpus must be > 0 and <= 192."
  }
}

variable "process_fov_memory" {
  description = "Memory in MiB of each process-fov job. The tutorial's ISS recipe peaks at about 1.1 GB per FOV."
  type        = number
  default     = 4096

  validation {
    condition     = var.process_fov_memory >= 512 && floor(var.process_fov_memory) == var.process_fov_memory
    error_message = "process_fov_memory must be a whole number of MiB, at least 512."
  }
}

variable "merge_vcpus" {
  description = "vCPUs of the merge-batch-job job. With Fargate, a value Fargate offers: 0.25, 0.5, 1, 2, 4, 8 or 16."
  type        = number
  default     = 2

  validation {
    condition     = var.merge_vcpus > 0 && var.merge_vcpus <= 192
    error_message = "merge_vcpus must be > 0 and <= 192."
  }
}

variable "merge_memory" {
  description = "Memory in MiB of the merge-batch-job job. The merge streams the FOV tables: it peaks near 300 MB whatever the number of FOVs, plus its cells table when the recipe assigns cells (make bench)."
  type        = number
  default     = 4096

  validation {
    condition     = var.merge_memory >= 512 && floor(var.merge_memory) == var.merge_memory
    error_message = "merge_memory must be a whole number of MiB, at least 512."
  }
}

variable "retry_attempts" {
  description = "Attempts per job (1 to 10). Only infrastructure failures are retried (Spot reclaims, image pull or container start errors); the recipe's own failures exit at once."
  type        = number
  default     = 3

  validation {
    condition     = var.retry_attempts >= 1 && var.retry_attempts <= 10 && floor(var.retry_attempts) == var.retry_attempts
    error_message = "retry_attempts must be a whole number from 1 to 10."
  }
}

variable "process_fov_timeout_seconds" {
  description = "Timeout of each attempt of a process-fov job, in seconds (at least 60)."
  type        = number
  default     = 3600

  validation {
    condition     = var.process_fov_timeout_seconds >= 60 && floor(var.process_fov_timeout_seconds) == var.process_fov_timeout_seconds
    error_message = "process_fov_timeout_seconds must be a whole number >= 60."
  }
}

variable "merge_ephemeral_storage" {
  description = "Fargate only: GiB of local disk for the merge-batch-job job, 21 to 200. The merge writes the merged table there before uploading it: about 1.3 GB per 1,000 FOVs of 3,800 spots, plus the spot CSV. null keeps Fargate's 20 GiB; on EC2 the job uses the instance's volume."
  type        = number
  default     = null

  validation {
    condition = var.merge_ephemeral_storage == null || try(
      var.merge_ephemeral_storage >= 21 && var.merge_ephemeral_storage <= 200 &&
      floor(var.merge_ephemeral_storage) == var.merge_ephemeral_storage, false
    )
    error_message = "merge_ephemeral_storage must be null or a whole number of GiB from 21 to 200."
  }
}

variable "merge_timeout_seconds" {
  description = "Timeout of each attempt of the merge-batch-job job, in seconds (at least 60)."
  type        = number
  default     = 7200

  validation {
    condition     = var.merge_timeout_seconds >= 60 && floor(var.merge_timeout_seconds) == var.merge_timeout_seconds
    error_message = "merge_timeout_seconds must be a whole number >= 60."
  }
}

################################################################################
# Images
################################################################################

variable "image_tag" {
  description = "Tag of the images in the module's ECR repositories that the job definitions run (used where process_fov_image / merge_image are null)."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid image tag: [A-Za-z0-9_.-], at most 128 characters, not starting with '.' or '-'."
  }
}

variable "process_fov_image" {
  description = "Full image URI of the process-fov worker. null uses <process-fov repository URL>:<image_tag>. Any URI is accepted (another registry, a local tag for an emulator)."
  type        = string
  default     = null

  validation {
    condition     = var.process_fov_image == null || length(trimspace(coalesce(var.process_fov_image, " "))) > 0
    error_message = "process_fov_image must be null or a non-empty image URI."
  }
}

variable "merge_image" {
  description = "Full image URI of the merge-batch-job worker. null uses <merge repository URL>:<image_tag>. Any URI is accepted."
  type        = string
  default     = null

  validation {
    condition     = var.merge_image == null || length(trimspace(coalesce(var.merge_image, " "))) > 0
    error_message = "merge_image must be null or a non-empty image URI."
  }
}

variable "job_environment" {
  description = "Extra environment variables of both job definitions (process-fov and merge-batch-job), e.g. a proxy, a log level, or AWS_ENDPOINT_URL for an emulator. Values are stored in plain text in the job definitions: no secrets. Names are letters, digits and _; they must not start with AWS_BATCH_ (set by Batch) nor be RUN_MANIFEST_URL, FOV_INDEX_OFFSET or AWS_DEFAULT_REGION (set by the module and the launcher)."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for name in keys(var.job_environment) :
      can(regex("^[A-Za-z_][A-Za-z0-9_]*$", name)) && !startswith(upper(name), "AWS_BATCH_") && !contains(["RUN_MANIFEST_URL", "FOV_INDEX_OFFSET", "AWS_DEFAULT_REGION"], name)
    ])
    error_message = "job_environment names must match [A-Za-z_][A-Za-z0-9_]*, must not start with AWS_BATCH_ (Batch sets those), and must not be RUN_MANIFEST_URL, FOV_INDEX_OFFSET or AWS_DEFAULT_REGION (the module and the launcher set those)."
  }
}

variable "ecr_image_tag_mutability" {
  description = "Tag mutability of the ECR repositories. MUTABLE lets `make push` move a tag such as \"latest\"; IMMUTABLE suits versioned tags."
  type        = string
  default     = "MUTABLE"

  validation {
    condition     = contains(["MUTABLE", "IMMUTABLE"], var.ecr_image_tag_mutability)
    error_message = "ecr_image_tag_mutability must be MUTABLE or IMMUTABLE."
  }
}

variable "ecr_keep_images" {
  description = "How many tagged images each ECR repository keeps; older ones expire. Untagged images expire after 7 days."
  type        = number
  default     = 30

  validation {
    condition     = var.ecr_keep_images >= 1 && floor(var.ecr_keep_images) == var.ecr_keep_images
    error_message = "ecr_keep_images must be a whole number >= 1."
  }
}

variable "ecr_force_delete" {
  description = "Let `terraform destroy` delete the ECR repositories while they still hold images."
  type        = bool
  default     = false
}

################################################################################
# Storage and logs
################################################################################

variable "create_results_bucket" {
  description = "Create the results bucket. false uses the existing bucket results_bucket_name (its settings are left as they are)."
  type        = bool
  default     = true
}

variable "results_bucket_name" {
  description = "Name of the results bucket. null (only with create_results_bucket = true) names it <name_prefix>-results-<account id>-<region>."
  type        = string
  default     = null

  validation {
    condition     = var.results_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", coalesce(var.results_bucket_name, "xxx")))
    error_message = "results_bucket_name must be a valid S3 bucket name (3 to 63 characters of [a-z0-9.-])."
  }
}

variable "results_bucket_versioning" {
  description = "Turn on versioning of a created results bucket."
  type        = bool
  default     = true
}

variable "results_noncurrent_version_expiration_days" {
  description = "Days after which overwritten (noncurrent) versions in a created results bucket expire. null keeps them."
  type        = number
  default     = 90

  validation {
    condition     = var.results_noncurrent_version_expiration_days == null || coalesce(var.results_noncurrent_version_expiration_days, 1) >= 1
    error_message = "results_noncurrent_version_expiration_days must be null or >= 1."
  }
}

variable "results_bucket_force_destroy" {
  description = "Let `terraform destroy` delete a created results bucket that still holds objects (every run's results)."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the created results bucket and the log group. null uses SSE-S3 for the bucket and CloudWatch's own encryption for the logs. The key policy must let CloudWatch Logs use it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "experiment_s3_locations" {
  description = "S3 locations jobs (and the submitter policy) may read experiments from, as \"s3://bucket\" or \"s3://bucket/prefix\" (the s3:// may be left out). The results bucket is always readable."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for l in var.experiment_s3_locations :
      can(regex("^(s3://)?[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", l)) && !strcontains(l, "*")
    ])
    error_message = "experiment_s3_locations must be \"s3://bucket\" or \"s3://bucket/prefix\" entries without wildcards."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the jobs' logs."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

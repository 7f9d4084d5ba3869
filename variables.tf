################################################################################
# General
################################################################################

variable "name_prefix" {
  description = "The deployment's name: the prefix of every resource name (queue, compute environments, job definitions, roles with the region, repositories, bucket, log group, the SSM parameter). Two deployments in one account and region need two names. Lower-case letters, digits and hyphens, 3 to 24 characters."
  type        = string
  default     = "starfish-batch"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3 to 24 characters of [a-z0-9-], start with a letter and not end with a hyphen."
  }
}

variable "iam_name_prefix" {
  description = "Prefix of the IAM role, instance profile and policy names (IAM names are account-wide). null names them <name_prefix>-<region>-..., so that deployments of other names or in other regions never collide. At most 54 characters of [A-Za-z0-9+=,.@_-]."
  type        = string
  default     = null

  validation {
    condition     = var.iam_name_prefix == null || can(regex("^[A-Za-z0-9+=,.@_-]{1,54}$", coalesce(var.iam_name_prefix, "x")))
    error_message = "iam_name_prefix must be null or 1 to 54 characters of [A-Za-z0-9+=,.@_-]."
  }
}

variable "iam_role_path" {
  description = "Path of every IAM role, the instance profile and the submitter policy (\"/\" or \"/some/path/\")."
  type        = string
  default     = "/"
  nullable    = false

  validation {
    condition     = length(var.iam_role_path) <= 512 && can(regex("^/([!-.0-~]+/)*$", var.iam_role_path))
    error_message = "iam_role_path must start and end with / (e.g. \"/starfish/\"), at most 512 printable ASCII characters."
  }
}

variable "iam_permissions_boundary" {
  description = "ARN of a managed policy set as the permissions boundary of every IAM role the module creates. null sets none."
  type        = string
  default     = null

  validation {
    condition     = var.iam_permissions_boundary == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", coalesce(var.iam_permissions_boundary, "x")))
    error_message = "iam_permissions_boundary must be null or an IAM policy ARN (arn:aws:iam::123456789012:policy/...)."
  }
}

variable "create_ssm_parameter" {
  description = "Write launcher_config (everything the launcher needs) to an SSM parameter that the submitter policy may read, so that scientists run with --deployment NAME or --config-parameter NAME and need no access to the Terraform state."
  type        = bool
  default     = true
  nullable    = false
}

variable "ssm_parameter_name" {
  description = "Name of that SSM parameter. null names it /starfish-batch/<name_prefix>/launcher-config, where the launcher's --deployment <name_prefix> finds it."
  type        = string
  default     = null

  validation {
    condition = var.ssm_parameter_name == null || try(
      length(var.ssm_parameter_name) <= 1011 &&
      can(regex("^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,14}$", var.ssm_parameter_name)) &&
      !can(regex("^/?(aws|ssm)", lower(var.ssm_parameter_name))), false
    )
    error_message = "ssm_parameter_name must be null or an SSM parameter name: [A-Za-z0-9_.-] in at most 15 /-separated levels, at most 1011 characters, not starting with aws or ssm."
  }
}

variable "tags" {
  description = "Tags every taggable resource of the module carries (set on each resource; the module sets no provider default_tags). The EC2 instances Batch starts carry only a Name tag, so that changing these tags never replaces a compute environment."
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
  description = "Maximum vCPUs of the compute environment: how many FOVs run at once is about max_vcpus / process_fov.vcpus. The On-Demand fallback environment (on_demand_fallback) has the same maximum."
  type        = number
  default     = 256

  validation {
    condition     = var.max_vcpus >= 1 && floor(var.max_vcpus) == var.max_vcpus
    error_message = "max_vcpus must be a whole number >= 1."
  }
}

variable "on_demand_fallback" {
  description = "With compute_type SPOT (or FARGATE_SPOT), add an On-Demand EC2 (or FARGATE) compute environment second in the queue's order, so that jobs Spot capacity cannot place run On-Demand instead of waiting. false keeps the queue Spot only. Ignored for EC2 and FARGATE."
  type        = bool
  default     = true
  nullable    = false
}

variable "runnable_time_limit_seconds" {
  description = "Seconds a job may block the head of the queue in RUNNABLE (no capacity, or no instance type or environment that can hold its vCPUs and memory, or a service role without permission) before the queue cancels it (job_state_time_limit_action); the launcher then reports the job failed with AWS's reason. 600 to 86400; null never cancels."
  type        = number
  default     = 14400

  validation {
    condition = var.runnable_time_limit_seconds == null || try(
      var.runnable_time_limit_seconds >= 600 && var.runnable_time_limit_seconds <= 86400 &&
      floor(var.runnable_time_limit_seconds) == var.runnable_time_limit_seconds, false
    )
    error_message = "runnable_time_limit_seconds must be null or a whole number of seconds from 600 to 86400."
  }
}

variable "fair_share_policy" {
  description = "Optional fair-share scheduling policy of the queue: compute_reservation (0 to 99, % of the maximum vCPUs kept for share identifiers not yet active), share_decay_seconds (0 to 604800), share_identifier the launcher submits with (letters, digits and _, ending with an optional *), and share_distribution (weights of share identifiers). null (the default) schedules first in, first out."
  type = object({
    compute_reservation = optional(number, 0)
    share_decay_seconds = optional(number, 0)
    share_identifier    = optional(string, "starfish")
    share_distribution = optional(list(object({
      share_identifier = string
      weight_factor    = optional(number, 1)
    })), [])
  })
  default = null

  validation {
    condition = var.fair_share_policy == null || try(
      var.fair_share_policy.compute_reservation >= 0 && var.fair_share_policy.compute_reservation <= 99 &&
      var.fair_share_policy.share_decay_seconds >= 0 && var.fair_share_policy.share_decay_seconds <= 604800 &&
      can(regex("^[A-Za-z0-9_]{1,255}$", var.fair_share_policy.share_identifier)) &&
      alltrue([for d in var.fair_share_policy.share_distribution : can(regex("^[A-Za-z0-9_]{1,255}\\*?$", d.share_identifier)) && d.weight_factor > 0 && d.weight_factor <= 1000]),
      false
    )
    error_message = "fair_share_policy: compute_reservation 0 to 99, share_decay_seconds 0 to 604800, share_identifier of [A-Za-z0-9_], share_distribution identifiers of [A-Za-z0-9_] (an optional trailing *) with weight_factor > 0 and <= 1000."
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
  description = "Subnets of the compute environment (required unless use_default_vpc = true). Jobs in private subnets need a NAT gateway or VPC endpoints for S3, ECR, CloudWatch Logs (and ECS on EC2/SPOT): see examples/private-subnets."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "subnet_ids must be subnet ids (subnet-...)."
  }
}

variable "use_default_vpc" {
  description = "Run the jobs in the default VPC's subnets (public ones: a trial, not production). Must be said explicitly: without it, subnet_ids is required."
  type        = bool
  default     = false
  nullable    = false
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
  description = "IPv4 ranges the created security group lets jobs reach on TCP 443 (ECR, S3, CloudWatch Logs, HTTPS experiments). [] with egress_prefix_list_ids / egress_security_group_ids limits egress to those (VPC endpoints, see examples/private-subnets)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
  nullable    = false

  validation {
    condition     = alltrue([for c in var.egress_cidr_blocks : can(cidrhost(c, 0))])
    error_message = "egress_cidr_blocks must be a list of IPv4 CIDR blocks."
  }
}

variable "egress_prefix_list_ids" {
  description = "Prefix lists the created security group lets jobs reach on TCP 443, such as an S3 gateway endpoint's (aws_vpc_endpoint.prefix_list_id)."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for p in var.egress_prefix_list_ids : can(regex("^pl-[0-9a-f]+$", p))])
    error_message = "egress_prefix_list_ids must be prefix list ids (pl-...)."
  }
}

variable "egress_security_group_ids" {
  description = "Security groups the created security group lets jobs reach on TCP 443, such as that of the interface VPC endpoints (ECR, CloudWatch Logs, ECS)."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for s in var.egress_security_group_ids : can(regex("^sg-[0-9a-f]+$", s))])
    error_message = "egress_security_group_ids must be security group ids (sg-...)."
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

variable "process_fov" {
  description = <<-EOT
    The process-fov job (one per field of view): vcpus (with Fargate, 0.25, 0.5, 1, 2, 4, 8 or 16), memory in MiB (the tutorial's ISS recipe peaks at about 1.1 GB per FOV), timeout_seconds of each attempt (at least 60), and image: a full image URI, or null for <process-fov repository URL>:<image_tag>.
  EOT
  type = object({
    vcpus           = optional(number, 1)
    memory          = optional(number, 4096)
    timeout_seconds = optional(number, 3600)
    image           = optional(string)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.process_fov.vcpus > 0 && var.process_fov.vcpus <= 192
    error_message = "process_fov.vcpus must be > 0 and <= 192."
  }

  validation {
    condition     = var.process_fov.memory >= 512 && floor(var.process_fov.memory) == var.process_fov.memory
    error_message = "process_fov.memory must be a whole number of MiB, at least 512."
  }

  validation {
    condition     = var.process_fov.timeout_seconds >= 60 && floor(var.process_fov.timeout_seconds) == var.process_fov.timeout_seconds
    error_message = "process_fov.timeout_seconds must be a whole number >= 60."
  }

  validation {
    condition     = var.process_fov.image == null || length(trimspace(coalesce(var.process_fov.image, " "))) > 0
    error_message = "process_fov.image must be null or a non-empty image URI."
  }
}

variable "merge" {
  description = <<-EOT
    The merge-batch-job job: vcpus (with Fargate, 0.25, 0.5, 1, 2, 4, 8 or 16), memory in MiB (the merge streams the FOV tables: it peaks near 250 MB whatever the number of FOVs, see make bench), timeout_seconds of each attempt (at least 60), image (a full image URI, or null for <merge repository URL>:<image_tag>), and ephemeral_storage: Fargate only, GiB of local disk from 21 to 200 where the merged table is written before its upload (about 1.3 GB per 1,000 FOVs of 3,800 spots, plus the spot CSV); null keeps Fargate's 20 GiB, and on EC2 the job uses the instance's volume.
  EOT
  type = object({
    vcpus             = optional(number, 2)
    memory            = optional(number, 4096)
    timeout_seconds   = optional(number, 7200)
    image             = optional(string)
    ephemeral_storage = optional(number)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.merge.vcpus > 0 && var.merge.vcpus <= 192
    error_message = "merge.vcpus must be > 0 and <= 192."
  }

  validation {
    condition     = var.merge.memory >= 512 && floor(var.merge.memory) == var.merge.memory
    error_message = "merge.memory must be a whole number of MiB, at least 512."
  }

  validation {
    condition     = var.merge.timeout_seconds >= 60 && floor(var.merge.timeout_seconds) == var.merge.timeout_seconds
    error_message = "merge.timeout_seconds must be a whole number >= 60."
  }

  validation {
    condition     = var.merge.image == null || length(trimspace(coalesce(var.merge.image, " "))) > 0
    error_message = "merge.image must be null or a non-empty image URI."
  }

  validation {
    condition = var.merge.ephemeral_storage == null || try(
      var.merge.ephemeral_storage >= 21 && var.merge.ephemeral_storage <= 200 &&
      floor(var.merge.ephemeral_storage) == var.merge.ephemeral_storage, false
    )
    error_message = "merge.ephemeral_storage must be null or a whole number of GiB from 21 to 200."
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

################################################################################
# Images
################################################################################

variable "create_repositories" {
  description = "Create the two ECR repositories (process-fov, merge-batch-job). false: bring your own images, given as process_fov.image and merge.image (full URIs)."
  type        = bool
  default     = true
  nullable    = false
}

variable "image_tag" {
  description = "Tag of the images in the module's ECR repositories that the job definitions run (used where process_fov.image / merge.image are null)."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid image tag: [A-Za-z0-9_.-], at most 128 characters, not starting with '.' or '-'."
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

variable "results_write_scope" {
  description = "Where a scientist holding the submitter policy may write in the results bucket. \"caller\" (default): only under <results_caller_prefix>/<their aws:userid>/, so no lab member can rewrite another's runs; the launcher finds that folder itself. \"bucket\": anywhere in the bucket (the old lab-wide write: any member can then rewrite any run, including its manifest and recipe; see docs/security.md)."
  type        = string
  default     = "caller"

  validation {
    condition     = contains(["caller", "bucket"], var.results_write_scope)
    error_message = "results_write_scope must be \"caller\" or \"bucket\"."
  }
}

variable "results_caller_prefix" {
  description = "With results_write_scope = \"caller\": the key prefix of the scientists' own folders in the results bucket; a scientist's runs live under s3://<bucket>/<prefix>/<aws:userid>/."
  type        = string
  default     = "users"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/?$", var.results_caller_prefix))
    error_message = "results_caller_prefix must be one or more folder names of A-Z a-z 0-9 _ . - joined by /, e.g. \"users\"."
  }
}

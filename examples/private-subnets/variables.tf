variable "region" {
  description = "AWS region of the VPC, queue, bucket and logs. null takes it from the environment (AWS_REGION, the profile)."
  type        = string
  default     = null

  validation {
    condition     = var.region == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", coalesce(var.region, "us-east-1")))
    error_message = "region must look like \"us-east-1\"."
  }
}

variable "compute_type" {
  description = "FARGATE (the default) or FARGATE_SPOT need the S3, ECR and CloudWatch Logs endpoints; EC2 and SPOT also the ECS ones (the container agent on each instance)."
  type        = string
  default     = "FARGATE"

  validation {
    condition     = contains(["EC2", "SPOT", "FARGATE", "FARGATE_SPOT"], var.compute_type)
    error_message = "compute_type must be one of EC2, SPOT, FARGATE, FARGATE_SPOT."
  }
}

variable "vpc_cidr" {
  description = "IPv4 range of the example's VPC; its two private subnets take the first two /20s."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrsubnet(var.vpc_cidr, 4, 1))
    error_message = "vpc_cidr must be an IPv4 CIDR block of /24 or larger (e.g. 10.42.0.0/16)."
  }
}

variable "availability_zone_suffixes" {
  description = "Availability zones of the two private subnets, as suffixes of the region (a fixed list: the subnets never move when AWS adds a zone)."
  type        = list(string)
  default     = ["a", "b"]

  validation {
    condition     = length(var.availability_zone_suffixes) >= 1 && length(var.availability_zone_suffixes) <= 16 && alltrue([for s in var.availability_zone_suffixes : can(regex("^[a-z]$", s))])
    error_message = "availability_zone_suffixes must be 1 to 16 letters such as [\"a\", \"b\"]."
  }
}

variable "region" {
  description = "AWS region of the queue, bucket and logs. null takes it from the environment (AWS_REGION, the profile)."
  type        = string
  default     = null

  validation {
    condition     = var.region == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", coalesce(var.region, "us-east-1")))
    error_message = "region must look like \"us-east-1\"."
  }
}

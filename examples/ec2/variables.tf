variable "region" {
  description = "AWS region of the queue, bucket and logs. null takes it from the environment (AWS_REGION, the profile)."
  type        = string
  default     = null
}
